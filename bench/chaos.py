"""Chaos: many deploys through the real system while workers die, Redis and PostgreSQL blip and Slack answers 429/500.

Issue "Durable operations" promises that no deploy, approval or announcement is lost, doubled or stuck
under those faults. This drives ``--deploys`` deploys (staging ones start at once, production ones get
two Approve clicks) of a few services through the real Bolt app in this process and ``--workers`` real
`opsbot worker` processes, both reaching Redis and PostgreSQL through TCP proxies (as
``tests/durability.py``'s Stage does), with the Slack emulator as Slack and ``tests/programs/fake_deploy.py``
as the provider. It runs the same deploys twice in one invocation, each on a fresh PostgreSQL database and
Redis prefix: **calm** (no faults), then **chaos**, where a seeded RNG picks faults one after another while
deploys are in flight: SIGKILL a worker and start a new one after a short pause, cut Redis or PostgreSQL
for 1–15 s, make chat.postMessage answer 429 (Retry-After 1–2 s) or 500 a few times. Commands and clicks
that fail because of a fault are retried after a moment, as a person would.

Once every deploy is requested the faults stop; it waits (at most ``--settle`` seconds) for everything to
settle, then prints one table, calm beside chaos. "fault end → outcome" is, for each deploy whose outcome
came after a fault that ended while it was in flight (after its request), the outcome message's time minus
the end of the last such fault. A deploy's outcome message is the one keyed ``deploy:<id>:outcome``, or
``deploy:<id>:not-started`` for one that ended before it started. Final states are read from PostgreSQL
directly, not through the proxy.
Prints figures; asserts no timing. Exits 1 when a durability promise is broken in either run (a duplicate
announcement or provider call, overlapping runs of a target, a stuck or a lost deploy), else 0.

    python bench/chaos.py                             # 50 deploys, 2 workers, a random seed (printed)
    python bench/chaos.py --seed 7 --deploys 8        # a short run, repeatable with the same seed
    python bench/chaos.py --seed 7 --deploys 50 --workers 2 --services 3 --settle 120

Needs Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432 (user postgres, admin database `test`).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import itertools
import json
import logging
import math
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.deploy_flow import database  # noqa: E402
from bot.adapters.redis.connection import connect  # noqa: E402
from bot.adapters.sql.engine import create_db_engine  # noqa: E402
from bot.adapters.sql.tables import outbox  # noqa: E402
from bot.adapters.sql.unit_of_work import SqlUnitOfWork  # noqa: E402
from bot.config import parse_config  # noqa: E402
from bot.console.slack_emulator import Posted, SlackEmulator  # noqa: E402
from bot.domain.approvals.model import ApprovalState  # noqa: E402
from bot.domain.deploys.model import Deploy, DeployKind  # noqa: E402
from tests.deploy_kit import Run, ServiceDouble, deploy_config_data, overlapping, provider_runs  # noqa: E402
from tests.durability import FINAL_NAMES, READY  # noqa: E402
from tests.faults import TcpProxy, WorkerProcess  # noqa: E402
from tests.support import Bot, start_emulator  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/0"
DEPLOY_SECONDS = 3  # how long fake_deploy.py takes per deploy
REQUESTER = "U0DEV"
APPROVERS = ("U0APPROVER1", "U0APPROVER2", "U0APPROVER3")
ENVIRONMENTS = ("staging", "production")
NO_OUTCOME_NEEDED = {"rejected", "expired", "cancelled"}  # …unless the deploy had started (tests/durability.py)
OUTCOME_KEYS = ("outcome", "not-started")  # what a deploy's end is announced under (never started: "not-started")
REQUEST_PATIENCE = 120.0  # seconds a lane keeps retrying a request or a click before it gives up
MESSAGE_PATIENCE = 600.0  # seconds an approver waits for a request's message (a channel's posts can wait minutes)
SLACK_BLIP_SECONDS = 20.0  # a Slack fault's failures not met by then are withdrawn
FAULT_KINDS = ("worker SIGKILL", "Redis cut", "PostgreSQL cut", "Slack 429", "Slack 500")


# ----- the plan: the same deploys in both runs -----


@dataclass(frozen=True)
class Planned:
    """One deploy to request: ``think`` is the pause (seconds) before requesting it, ``approvers`` who click Approve."""

    index: int
    service: str
    environment: str
    version: str
    think: float
    approvers: tuple[str, ...]

    @property
    def target(self) -> tuple[str, str]:
        return self.service, self.environment

    @property
    def command(self) -> str:
        return f"deploy {self.version} {self.service} to {self.environment}"


def service_names(count: int) -> list[str]:
    """``api``, then ``api2``, ``api3`` …: copies of the kit's `api`."""
    return ["api"] + [f"api{n}" for n in range(2, count + 1)]


def plan_deploys(seed: int, count: int, services: list[str]) -> list[Planned]:
    """``count`` deploys spread over every service and both environments; versions rise in plan order."""
    rng = random.Random(f"{seed}:plan")
    planned = []
    for index in range(count):
        environment = rng.choice(ENVIRONMENTS)
        approvers = tuple(rng.sample(APPROVERS, 2)) if environment == "production" else ()
        planned.append(
            Planned(index, rng.choice(services), environment, f"v1.{index + 1}.0", round(rng.uniform(0.0, 1.5), 2), approvers)
        )
    return planned


def lanes(plan: list[Planned]) -> list[list[Planned]]:
    """The plan split by target: a lane's deploys run one after another (a target holds one live deploy)."""
    by_target: dict[tuple[str, str], list[Planned]] = {}
    for planned in plan:
        by_target.setdefault(planned.target, []).append(planned)
    return list(by_target.values())


# ----- a run's rig: services, stores, proxies, the app and its workers -----


def chaos_config_data(state_dir: Path, services_url: str, services: list[str]) -> dict[str, Any]:
    """The kit's deploy config (short durability windows), `api` copied as each extra service, no freeze windows."""
    data = deploy_config_data(
        state_dir, services_url, command_args=("--sleep", str(DEPLOY_SECONDS)), production={"freeze_windows": []}
    )
    api = data["services"]["api"]
    for name in services[1:]:
        entry = copy.deepcopy(api)
        for checks in entry["environments"].values():
            checks["version_url"] = checks["version_url"].replace("/api/", f"/{name}/")
            for check in checks["health"]:
                check["url"] = check["url"].replace("/api/", f"/{name}/")
        data["services"][name] = entry
    return data


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


class RunWatcher(threading.Thread):
    """Notes when each provider run without an end line died (a SIGKILLed program writes none).

    ``overlapping()`` counts a run with no end as running until now; with the death times noted here
    (to within ``every`` seconds) a killed run ends when it died, not at the end of the benchmark.
    """

    def __init__(self, state_dir: Path, every: float = 0.1) -> None:
        super().__init__(name="run-watcher", daemon=True)
        self.state_dir = state_dir
        self.every = every
        self.died: dict[str, float] = {}  # run id -> unix time it was first seen dead
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.every):
            self.look()

    def look(self) -> None:
        try:
            runs = provider_runs(self.state_dir)
        except (ValueError, OSError):  # a line being written right now
            return
        now = time.time()
        for run in runs:
            if run.ended is None and run.run not in self.died and (run.pid is None or not _pid_alive(run.pid)):
                self.died[run.run] = now

    def runs(self) -> list[Run]:
        """Every provider run, a dead one with no end line ending when it was seen dead."""
        self.look()
        return [
            replace(r, ended=self.died[r.run]) if r.ended is None and r.run in self.died else r
            for r in provider_runs(self.state_dir)
        ]

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


@dataclass
class Rig:
    """Everything one run uses; ``reads`` goes to PostgreSQL directly, never through the proxy."""

    workdir: Path
    state_dir: Path
    emulator: SlackEmulator
    redis_proxy: TcpProxy
    pg_proxy: TcpProxy
    bot: Bot
    reads: sa.Engine
    watcher: RunWatcher
    workers: list[WorkerProcess] = field(default_factory=list)
    keep: bool = False  # keep the workdir (logs, evidence.json) for a reader

    def deploys(self) -> list[Deploy]:
        """Every deploy, newest first."""
        with SqlUnitOfWork(self.reads) as uow:
            return [d for d in uow.deploys.history(None, None, 100_000) if d.kind is DeployKind.DEPLOY]

    def find(self, planned: Planned) -> Deploy | None:
        """The deploy recorded for ``planned``, if its request went through."""
        with SqlUnitOfWork(self.reads) as uow:
            found = uow.deploys.history(planned.service, planned.environment, 100)
        return next((d for d in found if d.version == planned.version), None)

    def deploy(self, deploy_id: str) -> Deploy | None:
        with SqlUnitOfWork(self.reads) as uow:
            return uow.deploys.get(deploy_id)

    def approval(self, approval_id: str) -> tuple[ApprovalState, set[str]] | None:
        """An approval request's state and who voted on it."""
        with SqlUnitOfWork(self.reads) as uow:
            found = uow.approvals.get(approval_id)
        return None if found is None else (found[0].state, {vote.voter for vote in found[1]})

    def pending_approvals(self) -> list[str]:
        with SqlUnitOfWork(self.reads) as uow:
            return [request.id for request in uow.approvals.pending()]

    def keyed(self, key: str) -> list[Posted]:
        """Messages opsbot posted under ``key`` (the key travels in the message's metadata)."""
        return [m for m in self.emulator.visible() if message_key(m) == key]


def message_key(message: Posted) -> str | None:
    return metadata_key(message.metadata)


def metadata_key(metadata: Any) -> str | None:
    """The message key opsbot put in a message's metadata (``{"event_payload": {"key": …}}``), if any."""
    return ((metadata if isinstance(metadata, dict) else {}).get("event_payload") or {}).get("key")


def start_worker(rig: Rig, name: str) -> WorkerProcess:
    """A real `opsbot worker` through both proxies, taking jobs once this returns."""
    worker = WorkerProcess(rig.bot.environment(rig.workdir / "opsbot.yml"), rig.workdir / f"{name}.log").start()
    rig.workers.append(worker)
    worker.wait_for_log(READY, timeout=30)
    return worker


@contextlib.contextmanager
def rig_for(name: str, services: list[str], workers: int) -> Iterator[Rig]:
    """A rig of its own (database, Redis prefix, emulator, proxies, app, workers), all of it gone afterwards.

    The workdir (worker and app logs) is kept when the block raises or sets ``rig.keep``; its path is printed.
    """
    workdir = Path(tempfile.mkdtemp(prefix=f"opsbot-chaos-{name}-"))
    state_dir = workdir / "deployed"
    state_dir.mkdir()
    prefix = f"opsbot-chaos:{secrets.token_hex(4)}:"
    log_handler = logging.FileHandler(workdir / "app.log")
    log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.getLogger().addHandler(log_handler)
    cleanup: list[Callable[[], object]] = [log_handler.close, lambda: logging.getLogger().removeHandler(log_handler)]
    keep = True
    try:
        double = ServiceDouble(state_dir).start()
        cleanup.append(double.stop)
        config = parse_config(chaos_config_data(state_dir, double.base_url, services), "chaos")
        emulator = start_emulator(config)
        cleanup.append(emulator.stop)
        pg_url, drop = database("postgresql", state_dir)  # bench/deploy_flow.py's: a fresh, migrated database
        cleanup.append(drop)
        cleanup.append(lambda: delete_keys(prefix))
        redis_proxy = TcpProxy("127.0.0.1", 6379).start()
        pg_proxy = TcpProxy("127.0.0.1", 5432).start()
        cleanup += [redis_proxy.stop, pg_proxy.stop]
        proxied_redis = redis_proxy.url_for(REDIS_URL)
        bot = Bot(
            emulator=emulator,
            db_url=pg_proxy.url_for(pg_url),
            redis_client=connect(proxied_redis),
            prefix=prefix,
            config=config,
            redis_url=proxied_redis,
        )
        cleanup += [bot.services.engine.dispose, bot.close]
        reads = create_db_engine(pg_url)
        cleanup.append(reads.dispose)
        watcher = RunWatcher(state_dir)
        watcher.start()
        cleanup.append(watcher.stop)
        rig = Rig(workdir, state_dir, emulator, redis_proxy, pg_proxy, bot, reads, watcher)
        cleanup.append(lambda: stop_workers(rig))
        for number in range(1, workers + 1):
            start_worker(rig, f"worker-{number}")
        yield rig
        keep = rig.keep
    finally:
        interrupted: BaseException | None = None
        for step in reversed(cleanup):
            try:
                step()
            except Exception as exc:  # clean up the rest before saying what went wrong
                print(f"  cleanup: {getattr(step, '__qualname__', step)} failed: {exc!r}")
            except BaseException as exc:  # Ctrl-C while cleaning up: finish cleaning up first
                interrupted = interrupted or exc
        if keep:
            print(f"  {name}: logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        if interrupted is not None:
            raise interrupted


def stop_workers(rig: Rig) -> None:
    """Stop every worker process this run started (and whatever they left running), each even if one fails."""
    failures = []
    for worker in rig.workers:
        try:
            worker.stop()
        except AssertionError as exc:  # something survived SIGKILL: say so after stopping the others
            failures.append(exc)
    if failures:
        raise failures[0]


def delete_keys(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


# ----- faults -----


@dataclass(frozen=True)
class Fault:
    """One injected fault: its kind, and when it began and ended (unix times, seconds)."""

    kind: str
    began: float
    ended: float
    detail: str
    met: bool = True  # False: a Slack failure no call met (withdrawn); it counts for no deploy's recovery


class Chaos(threading.Thread):
    """Injects faults one after another, picked by a seeded RNG, until ``requests_done`` is set.

    Each fault is over before the next begins (1–4 s later), so its end is well defined: a killed
    worker's replacement logs that it takes jobs; a proxy listens again; the queued Slack failures were
    all answered, or withdrawn after SLACK_BLIP_SECONDS.
    """

    def __init__(self, rig: Rig, seed: int, requests_done: threading.Event) -> None:
        super().__init__(name="chaos", daemon=True)
        self.rig = rig
        self.rng = random.Random(f"{seed}:faults")
        self.requests_done = requests_done
        self.faults: list[Fault] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.requests_done.wait(self.rng.uniform(1.0, 4.0)):
                kind = self.rng.choice(FAULT_KINDS)
                began = time.time()
                detail, met = self.inject(kind)
                self.faults.append(Fault(kind, began, time.time(), detail, met))
        except BaseException as exc:  # reported by the main thread
            self.error = exc

    def inject(self, kind: str) -> tuple[str, bool]:
        """Cause one fault and wait for it to end; returns what was done, in words, and whether anything met it."""
        if kind == "worker SIGKILL":
            return self.kill_worker(), True
        if kind in ("Redis cut", "PostgreSQL cut"):
            seconds = round(self.rng.uniform(1.0, 15.0), 1)
            proxy = self.rig.redis_proxy if kind == "Redis cut" else self.rig.pg_proxy
            # cut, sleep, restore by hand: down(seconds=…) restores from a timer and from its exit at the same
            # instant, and the two restores can race (the second bind fails with EADDRINUSE).
            proxy.cut()
            try:
                time.sleep(seconds)
            finally:
                proxy.restore()
            return f"{seconds} s", True
        times = self.rng.randint(1, 4)
        if kind == "Slack 429":
            retry_after = self.rng.randint(1, 2)
            met = self.slack_fails("ratelimited", times, 429, retry_after)
            return f"{met}× of {times}, Retry-After {retry_after}", met > 0
        met = self.slack_fails("internal_error", times, 500, None)
        return f"{met}× of {times}", met > 0

    def kill_worker(self) -> str:
        worker = self.rng.choice([w for w in self.rig.workers if w.alive] or self.rig.workers)
        pause = round(self.rng.uniform(0.5, 3.0), 1)
        worker.kill()  # SIGKILL, like the OOM killer
        time.sleep(pause)
        worker.start()  # a new process
        with contextlib.suppress(AssertionError):
            worker.wait_for_log(READY, timeout=30)
        return f"{worker.log_path.stem}, back after {pause} s"

    def slack_fails(self, error: str, times: int, status: int, retry_after: int | None) -> int:
        """chat.postMessage answers ``status`` the next ``times`` times, for at most SLACK_BLIP_SECONDS; how many calls met it.

        Slack's blips end with time, not after so many calls: failures nobody met by then are withdrawn,
        else they would wait for the next post, however late (opsbot backs off up to 90 s between tries).
        """
        refused = len(self.refused(status))
        self.rig.emulator.fail("chat.postMessage", error, times=times, status=status, retry_after=retry_after)
        deadline = time.monotonic() + SLACK_BLIP_SECONDS
        while len(self.refused(status)) < refused + times and time.monotonic() < deadline:
            time.sleep(0.1)
        withdrawn = withdraw_failures(self.rig.emulator, "chat.postMessage")
        return times - withdrawn  # how many calls met it

    def refused(self, status: int) -> list[float]:
        """When chat.postMessage was answered ``status`` instead of posting (unix times)."""
        return [c.at for c in self.rig.emulator.calls_to("chat.postMessage") if c.status == status and not c.performed]

    def counts(self, *, unmet: bool = False) -> Counter[str]:
        """Faults per kind (``unmet``: only the Slack failures no call met)."""
        return Counter(f.kind for f in self.faults if not (unmet and f.met))


def withdraw_failures(emulator: SlackEmulator, method: str) -> int:
    """Drop the failures still queued for ``method``; how many. The emulator has no public call for it."""
    with emulator._lock:
        return len(emulator._failures.pop(method, []))


# ----- driving deploys as people would -----


class Stopped(Exception):
    """The run is being abandoned (Ctrl-C, an error elsewhere): a lane stops where it is."""


class Driver:
    """Requests each lane's deploys in order, clicks Approve on production ones, retries what a fault refused."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.retries = 0  # commands and clicks sent again because a fault refused them
        self.gave_up: list[str] = []  # what a lane could not get done within REQUEST_PATIENCE
        self.stopping = threading.Event()
        self._lock = threading.Lock()

    def lane(self, planned_deploys: list[Planned]) -> None:
        """Each deploy of one target in turn, once the one before it is over."""
        previous: Deploy | None = None
        try:
            for planned in planned_deploys:
                if previous is not None:
                    self.wait_over(previous)
                self.pause(planned.think)
                previous = self.request(planned)
                if previous is None:
                    return  # the rest of this lane would be refused as well
                for approver in planned.approvers:
                    self.approve(previous, approver)
        except Stopped:
            return

    def pause(self, seconds: float) -> None:
        """Sleep ``seconds``; raises Stopped as soon as the run is abandoned."""
        if self.stopping.wait(seconds):
            raise Stopped

    def wait_over(self, deploy: Deploy, patience: float = REQUEST_PATIENCE) -> None:
        """Wait until the target's last deploy is in a final state (a new request would be refused meanwhile)."""
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            current = self.rig.deploy(deploy.id)
            if current is None or current.state.value in FINAL_NAMES:
                return
            self.pause(0.3)

    def request(self, planned: Planned) -> Deploy | None:
        """`/ops deploy …` until the deploy is recorded; None if it never was."""
        deadline = time.monotonic() + REQUEST_PATIENCE
        reply = ""
        for attempt in itertools.count():
            if attempt:
                self.retried()
            try:
                reply = self.rig.bot.command(planned.command, user=REQUESTER, timeout=10).seen()
            except (AssertionError, TimeoutError) as exc:
                reply = repr(exc)
            found = self.rig.find(planned)
            if found is not None:
                return found
            if time.monotonic() > deadline:
                break
            self.pause(random.uniform(1.0, 2.0))  # a person trying again
            if (found := self.rig.find(planned)) is not None:  # the first try went through after all
                return found
        self.note(f"{planned.command}: never recorded; last reply: {reply[:200]}")
        return None

    def approve(self, deploy: Deploy, approver: str) -> None:
        """Wait for the approval request's message, then click Approve as ``approver`` until the vote counts.

        Gives up waiting for the message after MESSAGE_PATIENCE seconds, and clicking REQUEST_PATIENCE seconds
        after the message was first seen; stops as soon as the request is decided (by the other vote, a cancel …).
        """
        deadline = time.monotonic() + MESSAGE_PATIENCE
        while self.request_message(deploy) is None:
            if self.vote_counted(deploy, approver):
                return
            if time.monotonic() > deadline:
                self.note(f"approve {deploy.id} as {approver}: its request was not posted within {MESSAGE_PATIENCE:.0f} s")
                return
            self.pause(0.5)
        deadline = time.monotonic() + REQUEST_PATIENCE
        for attempt in itertools.count():
            if self.vote_counted(deploy, approver):
                return
            if time.monotonic() > deadline:
                break
            if attempt:
                self.retried()
            message = self.request_message(deploy)
            with contextlib.suppress(AssertionError, TimeoutError, StopIteration):  # StopIteration: no Approve button now
                if message is not None:
                    self.rig.bot.click(message, "Approve", approver, timeout=10)
            if self.vote_counted(deploy, approver):
                return
            self.pause(random.uniform(1.0, 2.0))  # a person trying again
        self.note(f"approve {deploy.id} as {approver}: the vote never counted")

    def vote_counted(self, deploy: Deploy, approver: str) -> bool:
        approval_id = deploy.approval_id or (self.rig.deploy(deploy.id) or deploy).approval_id
        found = self.rig.approval(approval_id) if approval_id else None
        return found is not None and (found[0] is not ApprovalState.PENDING or approver in found[1])

    def request_message(self, deploy: Deploy) -> Posted | None:
        """The approval request's message as Slack shows it now (None until it is posted)."""
        approval_id = deploy.approval_id or (self.rig.deploy(deploy.id) or deploy).approval_id
        posted = self.rig.keyed(f"approval:{approval_id}") if approval_id else []
        return copy.deepcopy(posted[0]) if posted else None

    def retried(self) -> None:
        with self._lock:
            self.retries += 1

    def note(self, what: str) -> None:
        with self._lock:
            self.gave_up.append(what)


# ----- measuring -----


@dataclass
class Figures:
    """What one run did and whether it kept the promises. Times are seconds."""

    requested: int = 0
    approved: int = 0  # production requests fully approved
    provider_calls: int = 0  # runs in runs.jsonl
    outcomes: int = 0  # deploys with exactly one outcome message (":outcome" or ":not-started")
    duplicate_announcements: int = 0  # message keys posted more than once, and deploys announced under both keys
    duplicate_provider_calls: int = 0  # deploys with more than one provider run
    overlaps: int = 0  # pairs of runs of one target under way together
    stuck: int = 0  # deploys not in a final state, and approval requests still pending
    lost: int = 0  # deploys that started but have no outcome message
    recovery: list[float] = field(default_factory=list)  # fault end → outcome message, seconds
    faults: Counter[str] = field(default_factory=Counter)  # injected, per kind
    unmet: Counter[str] = field(default_factory=Counter)  # of those, Slack failures no call met
    states: Counter[str] = field(default_factory=Counter)
    retries: int = 0  # commands and clicks sent again because a fault refused them
    gave_up: list[str] = field(default_factory=list)  # what the driver could not get done, in words
    unsuccessful: list[str] = field(default_factory=list)  # "id state: detail" of deploys that did not succeed
    wall: float = 0.0  # seconds, set-up to measurement
    settled: bool = False  # everything settled within --settle

    def broken(self) -> list[str]:
        """The promises this run broke, in words."""
        checks = {
            "duplicate announcements": self.duplicate_announcements,
            "duplicate provider calls": self.duplicate_provider_calls,
            "overlaps": self.overlaps,
            "stuck": self.stuck,
            "lost": self.lost,
        }
        return [f"{n} {name}" for name, n in checks.items() if n]


def first_line(text: str | None, limit: int = 160) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0][:limit] if lines else "-"


def needs_outcome(deploy: Deploy) -> bool:
    return deploy.state.value not in NO_OUTCOME_NEEDED or deploy.started_at is not None


def outcome_messages(rig: Rig, deploy: Deploy) -> list[Posted]:
    """A deploy's outcome messages: ``deploy:<id>:outcome``, or ``deploy:<id>:not-started`` ("did not start")."""
    return [m for what in OUTCOME_KEYS for m in rig.keyed(deploy.key(what))]


def settled(rig: Rig) -> bool:
    """Every deploy over, no request pending, every deploy that needs one has its outcome message."""
    deploys = rig.deploys()
    return (
        all(d.state.value in FINAL_NAMES for d in deploys)
        and not rig.pending_approvals()
        and all(outcome_messages(rig, d) for d in deploys if needs_outcome(d))
    )


def wait_settled(rig: Rig, timeout: float, quiet: float = 3.0) -> bool:
    """Wait (at most ``timeout`` s) until settled, then ``quiet`` s more for late duplicates; whether it settled."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if settled(rig):
            time.sleep(quiet)
            return True
        time.sleep(0.5)
    return False


def measure(rig: Rig, faults: list[Fault]) -> Figures:
    deploys = rig.deploys()
    runs = rig.watcher.runs()
    runs_per_deploy = Counter(r.deploy_id for r in runs)
    keys = Counter(key for m in rig.emulator.visible() if (key := message_key(m)))
    announced = {d.id: sum(keys[d.key(what)] for what in OUTCOME_KEYS) for d in deploys}
    both_keys = sum(1 for d in deploys if all(keys[d.key(what)] for what in OUTCOME_KEYS))
    not_final = [d for d in deploys if d.state.value not in FINAL_NAMES]
    waiting_on = {d.approval_id for d in not_final}
    figures = Figures(
        requested=len(deploys),
        approved=sum(
            1 for d in deploys if d.approval_id and (a := rig.approval(d.approval_id)) and a[0] is ApprovalState.APPROVED
        ),
        provider_calls=len(runs),
        outcomes=sum(1 for d in deploys if announced[d.id] == 1),
        duplicate_announcements=sum(1 for n in keys.values() if n > 1) + both_keys,
        duplicate_provider_calls=sum(1 for n in runs_per_deploy.values() if n > 1),
        overlaps=len(overlapping(runs)),
        stuck=len(not_final) + sum(1 for a in rig.pending_approvals() if a not in waiting_on),
        lost=sum(1 for d in deploys if (d.started_at or runs_per_deploy[d.id]) and not announced[d.id]),
        states=Counter(d.state.value for d in deploys),
        unsuccessful=[f"{d.id} {d.state.value}: {first_line(d.detail)}" for d in deploys if d.state.value != "succeeded"],
    )
    figures.recovery = recovery_times(rig, deploys, faults)
    return figures


def recovery_times(rig: Rig, deploys: list[Deploy], faults: list[Fault]) -> list[float]:
    """Seconds from the end of the last fault that ended while a deploy was in flight to its outcome message."""
    times = []
    for deploy in deploys:
        outcome = outcome_messages(rig, deploy)
        if not outcome:
            continue
        announced = float(outcome[0].ts)  # the emulator's ts is the unix time it was posted
        ends = [f.ended for f in faults if f.met and deploy.requested_at.timestamp() <= f.ended <= announced]
        if ends:
            times.append(announced - max(ends))
    return times


# ----- one run -----


def run_scenario(name: str, plan: list[Planned], args: argparse.Namespace, *, faults: bool) -> Figures:
    """Drive the plan through a fresh rig (with faults or calm), let it settle, measure."""
    print(f"{name}: {len(plan)} deploys, {args.workers} workers{', faults on' if faults else ''} …", flush=True)
    began = time.monotonic()
    with rig_for(name, service_names(args.services), args.workers) as rig:
        requests_done = threading.Event()
        chaos = Chaos(rig, args.seed, requests_done) if faults else None
        driver = Driver(rig)
        if chaos is not None:
            chaos.start()
        pool = ThreadPoolExecutor(max_workers=len(lanes(plan)), thread_name_prefix="lane")
        try:
            for done in [pool.submit(driver.lane, lane) for lane in lanes(plan)]:
                done.result()
        except BaseException:
            driver.stopping.set()  # Ctrl-C or an error: the lanes stop now, then everything is cleaned up
            raise
        finally:
            pool.shutdown(wait=True)
            requests_done.set()
            if chaos is not None:
                chaos.join()
        if chaos is not None and chaos.error is not None:
            raise chaos.error
        # Whatever the last fault left behind: both proxies listen, Slack answers, every worker runs.
        withdraw_failures(rig.emulator, "chat.postMessage")
        rig.redis_proxy.restore()
        rig.pg_proxy.restore()
        for worker in rig.workers:
            if not worker.alive:
                worker.start()
        calm_after = wait_settled(rig, args.settle)
        injected = chaos.faults if chaos is not None else []
        figures = measure(rig, injected)
        figures.settled = calm_after
        figures.faults = chaos.counts() if chaos is not None else Counter()
        figures.unmet = chaos.counts(unmet=True) if chaos is not None else Counter()
        figures.retries = driver.retries
        figures.gave_up = driver.gave_up
        figures.wall = time.monotonic() - began
        if figures.broken() or not calm_after:
            rig.keep = True
            dump_evidence(rig, injected)
    print(f"{name}: done in {figures.wall:.0f} s", flush=True)
    return figures


def outbox_rows(rig: Rig) -> list[sa.Row[Any]]:
    """Every outbox effect (without its payload), read from PostgreSQL directly."""
    columns = [c for c in outbox.c if c.name != "payload"]
    with rig.reads.connect() as conn:
        return list(conn.execute(sa.select(*columns).order_by(outbox.c.id)))


def dump_evidence(rig: Rig, faults: list[Fault]) -> None:
    """Write what a reader needs to see why a promise broke: deploys, runs, keyed messages, posts tried, outbox, faults."""
    evidence = {
        "deploys": [
            {
                "id": d.id,
                "target": f"{d.service}/{d.environment}",
                "version": d.version,
                "state": d.state.value,
                "requested": d.requested_at.timestamp(),
                "started": d.started_at.timestamp() if d.started_at else None,
                "finished": d.finished_at.timestamp() if d.finished_at else None,
                "detail": d.detail,
            }
            for d in rig.deploys()
        ],
        "runs": [r.__dict__ for r in rig.watcher.runs()],
        "messages": [
            {"key": message_key(m), "ts": m.ts, "channel": m.channel, "text": m.seen()[:300]}
            for m in rig.emulator.visible()
            if message_key(m)
        ],
        "post_calls": [
            {"at": c.at, "status": c.status, "performed": c.performed, "key": metadata_key(c.args.get("metadata"))}
            for c in rig.emulator.calls_to("chat.postMessage")
        ],
        "outbox": [dict(row._mapping) for row in outbox_rows(rig)],
        "faults": [f.__dict__ for f in faults],
    }
    (rig.workdir / "evidence.json").write_text(json.dumps(evidence, indent=1, default=str))


# ----- the report -----


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of ``values`` (``fraction`` 0–1)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def seconds(values: list[float], fraction: float) -> str:
    if not values:
        return "n/a"
    return f"{(statistics.median(values) if fraction == 0.5 else percentile(values, fraction)):.1f}"


def table(calm: Figures, chaos: Figures) -> str:
    rows: list[tuple[str, Callable[[Figures], object]]] = [
        ("requested", lambda f: f.requested),
        ("approved (production)", lambda f: f.approved),
        ("provider calls", lambda f: f.provider_calls),
        ("outcomes announced", lambda f: f.outcomes),
        ("duplicate announcements", lambda f: f.duplicate_announcements),
        ("duplicate provider calls", lambda f: f.duplicate_provider_calls),
        ("overlaps", lambda f: f.overlaps),
        ("stuck", lambda f: f.stuck),
        ("lost", lambda f: f.lost),
        ("fault end → outcome p50 (s)", lambda f: seconds(f.recovery, 0.5) if f.faults else "n/a"),
        ("fault end → outcome p99 (s)", lambda f: seconds(f.recovery, 0.99) if f.faults else "n/a"),
        ("wall time (s)", lambda f: f"{f.wall:.0f}"),
    ]
    lines = ["| | calm | chaos |", "|---|---:|---:|"]
    lines += [f"| {label} | {value(calm)} | {value(chaos)} |" for label, value in rows]
    return "\n".join(lines)


def fault_count(figures: Figures, kind: str) -> str:
    unmet = f" ({figures.unmet[kind]} met no call)" if figures.unmet[kind] else ""
    return f"{kind} {figures.faults[kind]}{unmet}"


def describe(name: str, figures: Figures) -> list[str]:
    states = ", ".join(f"{state} {n}" for state, n in sorted(figures.states.items())) or "none"
    lines = [f"{name}: final states: {states}; commands/clicks retried: {figures.retries}"]
    if not figures.settled:
        lines.append(f"{name}: did not settle within --settle")
    lines += [f"{name}: gave up: {what}" for what in figures.gave_up]
    lines += [f"{name}: {what}" for what in figures.unsuccessful]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, default=None, help="default: random (printed, to repeat a run)")
    parser.add_argument("--deploys", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--services", type=int, default=3, help="api, api2 … (each with staging and production)")
    parser.add_argument("--settle", type=float, default=120.0, help="seconds to wait for everything to settle")
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1_000_000)
    again = f"--seed {args.seed} --deploys {args.deploys} --workers {args.workers} --services {args.services}"
    print(f"seed {args.seed}  (again: python bench/chaos.py {again})")
    logging.getLogger().setLevel(logging.INFO)  # opsbot's logs go to each run's app.log, not the console
    plan = plan_deploys(args.seed, args.deploys, service_names(args.services))
    production = sum(1 for p in plan if p.environment == "production")
    print(
        f"plan: {len(plan)} deploys ({production} production, {len(plan) - production} staging) over {len(lanes(plan))} targets"
    )

    calm = run_scenario("calm", plan, args, faults=False)
    chaos = run_scenario("chaos", plan, args, faults=True)

    print()
    print(table(calm, chaos))
    print()
    print("faults injected: " + ", ".join(fault_count(chaos, kind) for kind in FAULT_KINDS))
    for line in describe("calm", calm) + describe("chaos", chaos):
        print(line)
    broken = [f"calm: {b}" for b in calm.broken()] + [f"chaos: {b}" for b in chaos.broken()]
    if broken:
        print(f"verdict: BROKEN: {'; '.join(broken)} (seed {args.seed})")
        return 1
    print(f"verdict: kept: no duplicate, overlap, stuck or lost deploy in either run (seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
