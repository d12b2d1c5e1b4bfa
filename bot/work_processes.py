"""Work processes for `opsbot serve`: a gunicorn worker acks; other processes do the commands' work.

Every listener acks on the request thread and leaves its work to a lazy listener (``bot.app.create_app``). In one
process that work and the acks share one GIL: under load an ack waits behind the work, however the threads are
prioritised (bench/ack_latency.py, 200 requests a second on 2 CPUs: read ack p99 57–282 ms against a minimal Bolt
app's 15 ms). With ``OPSBOT_WORK_PROCESSES`` = N > 0, each gunicorn worker starts N work processes, ``nice`` steps below
it (``OPSBOT_LISTENER_NICE``), each with its own runtime and Bolt app, and hands every lazy listener to one of them the
way Bolt's AWS Lambda adapter hands one to another Lambda (``slack_bolt.adapter.aws_lambda``): the request's raw body,
its headers and the lazy function's name, dispatched again there with ``lazy_only`` set. The gunicorn worker checked
the request's signature; the work process trusts what comes down its own pipe and does not check it again (a command
that waited in a backlog longer than Slack's 5-minute signature window would otherwise be dropped).

A work process runs the ops config its gunicorn worker started with (handed over, not read again from the file), so
a replacement never runs an edit its siblings do not.

Faults:

- A work process dies (SIGKILL, out of memory): it is started again (at once, or after 1 s doubling to 60 s while it
  keeps dying within 10 s of being ready; the same while the system refuses to start one). Each command it had taken
  gets an ephemeral reply saying its work stopped part-way and may be partly applied, and an audit entry
  ``work.lost``; commands handed to it that it had not taken go to another.
- No work process is ready (while they start, or while they keep dying): the command runs in the gunicorn worker, on
  its own pool, as with N = 0 (logged at most once a minute).
- The gunicorn worker stops: it tells its work processes, which finish what they run and exit; one still running
  after ``close``'s timeout is killed, and its users told. Work processes ignore SIGTERM and SIGINT, which a platform's
  stop (Heroku, systemd) and a terminal's Ctrl-C send to every process at once. A gunicorn worker killed outright
  leaves end-of-file on their pipes, which they take as the signal to finish and exit.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from slack_bolt import App, BoltRequest
from slack_bolt.lazy_listener.runner import LazyListenerRunner
from slack_sdk.webhook import WebhookClient

from bot.config import OpsConfig
from bot.domain.shared.ports import AuditEntry, AuditLog
from bot.render import escape_mrkdwn
from bot.settings import Settings

log = logging.getLogger("opsbot.work")

LAZY_ONLY = "x-slack-bolt-lazy-only"  # the headers Bolt reads a lazy-only request from (slack_bolt.request.BoltRequest)
LAZY_FUNCTION = "x-slack-bolt-lazy-function-name"
QUICK_DEATH_SECONDS = 10.0  # a work process that dies sooner after its start waits longer before the next start
MAX_BACKOFF_SECONDS = 60.0


@dataclass
class Handover:
    """One lazy listener given to a work process: what it needs to run again there, and, for this side, the
    function and request to run here instead if it cannot be delivered."""

    id: int
    function: Callable[..., None]
    request: BoltRequest
    sent: bool = False

    def describe(self) -> str:
        """What the user asked, in a line: ``/ops deploy …``, ``click: Approve``, or the payload's type."""
        body: dict[str, Any] = self.request.body or {}
        if body.get("command"):
            return f"{body['command']} {body.get('text') or ''}".strip()
        actions = body.get("actions") or []
        if body.get("type") == "block_actions" and actions:
            label = (actions[0].get("text") or {}).get("text") or actions[0].get("action_id") or "a button"
            return f"click: {label}"
        return str(body.get("type") or "request")

    def wire(self) -> tuple[int, str, dict[str, list[str]], str]:
        """What goes down the pipe: (id, raw body, headers, lazy function name); picklable, a few KB."""
        headers = {k: list(v) for k, v in self.request.headers.items()}
        return self.id, self.request.raw_body, headers, self.request.lazy_function_name or ""


@dataclass
class _Child:
    index: int
    pid: int
    process: BaseProcess
    conn: Connection
    started: float
    to_send: queue.SimpleQueue[Handover | None] = field(default_factory=queue.SimpleQueue)
    in_flight: dict[int, Handover] = field(default_factory=dict)
    backoff: float = 0.0  # seconds waited before this start (0: its predecessor lived long enough)
    ready_at: float | None = None
    dead: bool = False
    gone: threading.Event = field(default_factory=threading.Event)  # its end is handled: users told, pipe closed
    sender: threading.Thread | None = None


class WorkProcesses(LazyListenerRunner):
    """Bolt's lazy listener runner for `opsbot serve` (installed with ``install``): runs each lazy listener in one of
    ``count`` work processes, the one with the fewest in flight; in this process, on ``fallback``, when none is ready.

    ``config`` is the ops config this process runs with: work processes get it from here, never from the file, so a
    replacement started after the file changed runs the same config as its gunicorn worker."""

    def __init__(
        self, settings: Settings, count: int, *, config: OpsConfig, audit: AuditLog | None = None, nice: int = 0
    ) -> None:
        self.logger = log
        self._settings = settings
        self._config = config
        self._count = count
        self._audit = audit
        self._nice = nice
        self._fallback: LazyListenerRunner | None = None
        self._children: list[_Child | None] = [None] * count
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._closing = False
        self._said_here = 0.0  # when it last logged that commands run here
        self._context = multiprocessing.get_context("spawn")  # a fresh interpreter: no copy of this one's sockets or locks

    def install(self, app: App) -> None:
        """Make this the runner of ``app``'s lazy listeners; its current runner (Bolt's thread pool) is the fallback."""
        self._fallback = app.listener_runner.lazy_listener_runner
        app.listener_runner.lazy_listener_runner = self

    def start_processes(self) -> None:
        """Start every work process (each reports ready once its runtime and app are built, in a few seconds)."""
        for index in range(self._count):
            threading.Thread(target=self._keep_starting, args=(index, 0.0), name=f"work-start-{index}", daemon=True).start()

    def start(self, function: Callable[..., None], request: BoltRequest) -> None:
        handover = Handover(next(self._ids), function, request)
        if not self._hand(handover):
            self._run_here(handover)

    def close(self, timeout: float = 15.0) -> None:
        """Let each work process finish what it runs and exit, within ``timeout`` seconds in all; kill the rest (their
        users are told, as for any work process that ends with commands in flight)."""
        with self._lock:
            self._closing = True
            children = [c for c in self._children if c is not None and not c.dead]
        for child in children:
            child.to_send.put(None)
        deadline = time.monotonic() + timeout
        for child in children:
            if not child.gone.wait(max(0.0, deadline - time.monotonic())):
                log.warning(
                    "work process %s did not finish its %d command(s) within %.0f s; killing it",
                    child.pid,
                    len(child.in_flight),
                    timeout,
                )
                with contextlib.suppress(OSError, ValueError):
                    child.process.kill()  # it ignores SIGTERM: its gunicorn worker decides when it stops
                child.gone.wait(10)

    def _hand(self, handover: Handover) -> bool:
        with self._lock:
            if self._closing:
                return False
            live = [c for c in self._children if c is not None and c.ready_at is not None and not c.dead]
            if not live:
                return False
            child = min(live, key=lambda c: len(c.in_flight))
            child.in_flight[handover.id] = handover
        child.to_send.put(handover)
        return True

    def _run_here(self, handover: Handover) -> None:
        if self._fallback is None:
            raise RuntimeError("WorkProcesses.install(app) was not called")
        now = time.monotonic()
        if now - self._said_here > 60:
            self._said_here = now
            log.info("no work process is ready: commands run in this gunicorn worker (said at most once a minute)")
        self._fallback.start(handover.function, handover.request)

    def _keep_starting(self, index: int, backoff: float) -> None:
        """Start work process ``index``, retrying (with ``MAX_BACKOFF_SECONDS`` at most between tries) while the system
        refuses (no file descriptors, no memory); until then its gunicorn worker runs the commands."""
        delay = backoff
        while True:
            time.sleep(delay)
            with self._lock:
                if self._closing:
                    return
            try:
                self._spawn(index, delay)
                return
            except Exception as exc:  # OSError (EMFILE, ENOMEM, EAGAIN) and whatever else spawning raises
                delay = min(MAX_BACKOFF_SECONDS, max(1.0, delay * 2))
                log.error(
                    "could not start work process %d (%s: %s); trying again in %.0f s", index, type(exc).__name__, exc, delay
                )

    def _spawn(self, index: int, backoff: float) -> None:
        ours, theirs = self._context.Pipe(duplex=True)
        try:
            process = self._context.Process(
                target=work,
                args=(theirs, self._settings, self._config, self._nice),
                name=f"opsbot-work-{index}",
                daemon=True,
            )
            process.start()
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()  # only the child holds its end: when it dies, this end reads end-of-file
        child = _Child(index, process.pid or 0, process, ours, time.monotonic(), backoff=backoff)
        child.sender = threading.Thread(target=self._send_loop, args=(child,), name=f"work-send-{index}", daemon=True)
        with self._lock:
            self._children[index] = child
        child.sender.start()
        threading.Thread(target=self._receive_loop, args=(child,), name=f"work-receive-{index}", daemon=True).start()
        log.info("work process %s started (%s, for gunicorn worker %s)", process.pid, process.name, os.getpid())

    def _send_loop(self, child: _Child) -> None:
        while True:
            handover = child.to_send.get()
            if handover is None:
                break
            with self._lock:
                if child.dead or handover.id not in child.in_flight:
                    continue  # rerouted when the child died
            try:
                child.conn.send(handover.wire())
            except (OSError, ValueError):  # the child is gone: its receiving side reroutes what it had not taken
                break
            with self._lock:
                handover.sent = True
        with contextlib.suppress(OSError, ValueError):  # stopping: the child finishes its work and exits
            child.conn.send(None)

    def _receive_loop(self, child: _Child) -> None:
        while True:
            try:
                kind, value = child.conn.recv()
            except (EOFError, OSError):
                break
            with self._lock:
                if kind == "ready":
                    child.ready_at = time.monotonic()
                    log.info("work process %s is ready", child.pid)
                elif kind == "done":
                    child.in_flight.pop(value, None)
        self._ended(child)

    def _ended(self, child: _Child) -> None:
        pid = child.pid
        child.process.join(5)
        with self._lock:
            child.dead = True
            closing = self._closing
            handed = list(child.in_flight.values())
            child.in_flight.clear()
        child.to_send.put(None)  # its sender thread ends, and with it the last use of the pipe
        if child.sender is not None:
            child.sender.join(5)
        child.conn.close()
        code = child.process.exitcode
        _forget_metrics(pid)
        with contextlib.suppress(ValueError):  # still running after all (join timed out): left to the daemon cleanup
            child.process.close()
        lost = [h for h in handed if h.sent]
        if closing:
            for handover in lost:
                self._tell_lost(handover, "opsbot was stopping and could not wait for it")
            child.gone.set()
            return
        reason = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        log.error(
            "work process %s ended (%s) with %d command(s) in flight%s",
            pid,
            reason,
            len(handed),
            "".join(f"; {h.describe()}" for h in handed[:5]),
        )
        for handover in handed:
            if handover.sent:
                self._tell_lost(handover, f"its work process ended: {reason}")
            elif not self._hand(handover):
                self._run_here(handover)
        child.gone.set()
        lived = time.monotonic() - child.ready_at if child.ready_at is not None else 0.0
        delay = min(MAX_BACKOFF_SECONDS, max(1.0, child.backoff * 2)) if lived < QUICK_DEATH_SECONDS else 0.0
        if delay:
            log.warning(
                "work process %d died %s after it was ready; starting another in %.0f s", child.index, f"{lived:.0f} s", delay
            )
        self._keep_starting(child.index, delay)

    def _tell_lost(self, handover: Handover, why: str) -> None:
        """The user hears that the work stopped part-way (it may be partly applied), and the audit log records it."""
        body: dict[str, Any] = handover.request.body or {}
        user = body.get("user_id") or (body.get("user") or {}).get("id") or "unknown"
        channel = body.get("channel_id") or (body.get("channel") or {}).get("id")
        line = handover.describe()
        if body.get("command"):
            what = f"`{escape_mrkdwn(line[:120])}`"
        elif body.get("type") == "block_actions":
            what = f"your click on “{escape_mrkdwn(line.removeprefix('click: ')[:60])}”"
        else:
            what = "your request"
        if self._audit is not None:
            try:
                self._audit.record(
                    AuditEntry(
                        actor=str(user),
                        action="work.lost",
                        outcome="error",
                        params={"request": line[:200]},
                        error=f"stopped part-way: {why}",
                        channel=channel,
                        request_id=body.get("trigger_id"),
                    )
                )
            except Exception as exc:  # the database may be what failed; the log keeps it
                log.error("could not audit the lost work of %s (%s)", line[:60], type(exc).__name__)
        urls: list[dict[str, Any]] = body.get("response_urls") or []  # a modal's submission: its chosen conversations'
        url = body.get("response_url") or (urls[0].get("response_url") if urls else None)
        if not url:
            return
        text = (
            f"⚠️ opsbot stopped part-way through {what} ({why}). "
            "It may have been partly applied: check `/ops audit` before you try again."
        )
        try:
            WebhookClient(url, timeout=10).send(text=text, response_type="ephemeral", replace_original=False)
        except Exception as exc:  # the response URL may have expired (30 minutes, 5 uses: Slack's limits)
            log.warning("could not tell %s that its work stopped (%s)", user, type(exc).__name__)


def _forget_metrics(pid: int | None) -> None:
    """An ended process's live gauges leave the scrape (prometheus_client's multiprocess mode), as gunicorn workers'."""
    if pid and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def work(conn: Connection, settings: Settings, config: OpsConfig, nice: int) -> None:
    """A work process's life: build a runtime (on its gunicorn worker's ``config``) and a Bolt app, say ready, then run
    every lazy listener handed over, each on the pool's threads (commands wait on Slack, the database and providers),
    and say done; when told to stop, or at end-of-file, finish and exit.

    SIGINT and SIGTERM are ignored: a terminal's Ctrl-C and a platform's stop (Heroku and systemd send SIGTERM to every
    process at once) reach it with its gunicorn worker, which stops it once its commands are done (``close``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if nice > 0 and sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, 0, min(19, os.getpriority(os.PRIO_PROCESS, 0) + nice))
        except OSError as exc:
            log.warning("could not lower the work process's priority: %s", exc)
    sys.setswitchinterval(settings.opsbot_gil_switch_ms / 1000)
    from bot.app import LISTENER_THREADS, create_app
    from bot.logs import setup_logging
    from bot.wiring import build_services

    setup_logging(settings.log_level, settings.log_format, secrets=settings.secret_values())
    try:
        services = build_services(settings, config=config)
        pool = ThreadPoolExecutor(max_workers=LISTENER_THREADS, thread_name_prefix="work")
        app = create_app(settings, services, executor=pool, verify_requests=False)
    except Exception:  # in the log as one record (LOG_FORMAT); its gunicorn worker starts another, later
        log.exception("work process %s could not start", os.getpid())
        sys.exit(1)
    for name, reason in services.renderer.compile_all().items():  # before it is ready: the worker runs commands till then
        log.error("template %s does not compile: %s", name, reason)
    sending = threading.Lock()

    def say(kind: str, value: Any) -> None:
        with sending, contextlib.suppress(OSError, ValueError):  # the gunicorn worker is gone: the work still finishes
            conn.send((kind, value))

    def run(job_id: int, body: str, headers: dict[str, list[str]], function: str) -> None:
        try:
            app.dispatch(BoltRequest(body=body, headers={**headers, LAZY_ONLY: ["1"], LAZY_FUNCTION: [function]}))
        except Exception:  # Bolt's error handler answered the user; this is what it could not handle
            log.exception("lazy listener %s failed", function)
        finally:
            say("done", job_id)

    say("ready", os.getpid())
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):  # the gunicorn worker is gone
            break
        if job is None:  # the gunicorn worker is stopping
            break
        pool.submit(run, *job)
    pool.shutdown(wait=True)
    services.close()
