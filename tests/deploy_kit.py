"""What deploy tests share: a real local program, real local HTTP servers, and a config that uses them.

- ``tests/programs/fake_deploy.py`` is the `command` provider's program (run by argv, no shell).
- ``ServiceDouble`` is a local HTTP server playing the deployed services: ``/<service>/<env>/health``
  and ``/<service>/<env>/version`` (the version the last successful deploy wrote to the state dir).
- ``WebhookReceiver`` is a local deploy webhook: it checks the signature, deduplicates on the
  idempotency key, and can be told to fail before or after doing the work, to take time doing it
  (``work_seconds``) or to hang (``hang``).
- Both record each provider run in ``STATE_DIR/runs.jsonl`` with its start and end time;
  ``provider_runs(state_dir)`` reads them and ``overlapping(runs)`` finds two runs of one target at once.
Verification goes through the real health engine (``bot.adapters.http_health``), which
``build_services`` wires: the services double is what it probes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bot.config import OpsConfig, parse_config
from bot.domain.shared.ports import ServiceEvent
from tests.support import config_data

PROGRAM = Path(__file__).resolve().parent / "programs" / "fake_deploy.py"
WEBHOOK_SECRET_ENV = "OPSBOT_TEST_WEBHOOK_SECRET"
RUNS_FILE = "runs.jsonl"  # one JSON line when a provider run starts, one when it ends


class _Server:
    """A ThreadingHTTPServer on 127.0.0.1, port 0, answering through ``self.answer``."""

    def start(self) -> _Server:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _reply(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, payload = owner.answer(self.command, self.path, dict(self.headers.items()), body)
                data = b"" if status == 204 else json.dumps(payload).encode()  # 204 has no body
                self.send_response(status)
                if data:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_HEAD = _reply

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        raise NotImplementedError


class ServiceDouble(_Server):
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.unhealthy: set[str] = set()  # "api/production" answers 503 on /health
        self.hits: list[str] = []

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        self.hits.append(path)
        parts = path.strip("/").split("/")
        if len(parts) != 3:
            return 404, {"error": "not found"}
        service, env, what = parts
        if what == "health":
            if f"{service}/{env}" in self.unhealthy:
                return 503, {"status": "down", "database": "unreachable"}
            return 200, {"status": "healthy"}
        version_file = self.state_dir / f"{service}-{env}.version"
        return 200, {"version": version_file.read_text() if version_file.exists() else "none"}


@dataclass
class WebhookReceiver(_Server):
    """A deploy webhook. Each attempt in ``attempts`` is ``{"headers", "body", "started", "ended"}`` (unix times;
    ``ended`` is None while it runs). An attempt that does the work is a provider run in ``STATE_DIR/runs.jsonl``
    (``"provider": "webhook"``, ``"exit"``: the HTTP status answered); a duplicate idempotency key is a run too,
    though it deploys nothing again, so two overlapping requests for one target always show.

    ``work_seconds``: the work takes this long before the answer. ``hang``: the work never starts and no
    answer comes (the caller times out) until ``hang`` is set back to False; a hung run has no end.
    """

    secret: str
    state_dir: Path
    script: list[tuple[str, int]] = field(default_factory=list)  # ("before"|"after", status) answered first, in order
    attempts: list[dict[str, Any]] = field(default_factory=list)
    done: dict[str, dict[str, Any]] = field(default_factory=dict)  # idempotency key -> deploy
    bad_signatures: int = 0
    work_seconds: float = 0.0
    hang: bool = False

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True  # hung and working attempts give up without answering
        super().stop()

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        started = time.time()
        headers = {k.lower(): v for k, v in headers.items()}
        expected = (
            "sha256="
            + hmac.new(
                self.secret.encode(), headers.get("x-opsbot-timestamp", "").encode() + b"." + body, hashlib.sha256
            ).hexdigest()
        )
        with self._lock:
            attempt: dict[str, Any] = {"headers": headers, "body": json.loads(body or b"{}"), "started": started, "ended": None}
            self.attempts.append(attempt)
            if not hmac.compare_digest(expected, headers.get("x-opsbot-signature", "")):
                self.bad_signatures += 1
                attempt["ended"] = time.time()
                return 401, {"error": "bad signature"}
            when, status = self.script.pop(0) if self.script else ("after", 200)
            if when == "before":
                attempt["ended"] = time.time()
                return status, {"error": "not now"}
        deploy = json.loads(body)
        run = {
            "run": uuid.uuid4().hex,
            "provider": "webhook",
            **{k: deploy.get(k) for k in ("deploy_id", "service", "environment", "version")},
            "pid": os.getpid(),
            "started": started,
            "ended": None,
        }
        record_run(self.state_dir, run)
        while self.hang and not self._stopping:
            time.sleep(0.02)
        deadline = time.monotonic() + self.work_seconds
        while time.monotonic() < deadline and not self._stopping:
            time.sleep(min(0.02, max(0.0, deadline - time.monotonic())))
        if self._stopping:
            return 503, {"error": "receiver stopped"}
        with self._lock:
            key = headers.get("idempotency-key", "")
            if key not in self.done:  # the receiver's half of idempotency: one deploy per key
                self.done[key] = deploy
                (self.state_dir / f"{deploy['service']}-{deploy['environment']}.version").write_text(deploy["version"])
            attempt["ended"] = time.time()
            version = self.done[key]["version"]
        record_run(self.state_dir, {**run, "ended": attempt["ended"], "exit": status})
        return status, {"deployed": version}


# ----- provider runs in time -----


@dataclass(frozen=True)
class Run:
    """One provider run: a `fake_deploy.py` process or a webhook request that did the work.

    ``started`` / ``ended`` are unix times (float seconds); ``ended`` is None for a run that has not
    ended, or never will (SIGKILLed, hung). ``exit`` is the program's exit status (-15 after SIGTERM)
    or the HTTP status the webhook answered; None while it runs. ``error`` names the exception that
    ended a program (``BrokenPipeError``: whoever read its output, the worker, was gone).
    """

    run: str
    provider: str
    deploy_id: str | None
    service: str
    environment: str
    version: str
    pid: int | None
    started: float
    ended: float | None
    exit: int | None = None
    error: str | None = None

    @property
    def target(self) -> tuple[str, str]:
        return self.service, self.environment

    def end_or(self, now: float) -> float:
        return self.ended if self.ended is not None else now


def record_run(state_dir: Path, run: dict[str, Any]) -> None:
    """Append one line to ``state_dir/runs.jsonl``, flushed and fsynced (a kill right after loses nothing)."""
    with (state_dir / RUNS_FILE).open("a") as runs:
        runs.write(json.dumps(run) + "\n")
        runs.flush()
        os.fsync(runs.fileno())


def provider_runs(state_dir: Path) -> list[Run]:
    """Every provider run recorded in ``state_dir/runs.jsonl``, in the order they started.

    A run's end line replaces its start line; a run with no end line has ``ended=None``.
    """
    path = state_dir / RUNS_FILE
    lines = path.read_text().splitlines() if path.exists() else []
    latest: dict[str, dict[str, Any]] = {}
    for line in lines:
        if line.strip():
            record = json.loads(line)
            if record.get("ended") is not None or record["run"] not in latest:
                latest[record["run"]] = record
    runs = [Run(**{k: v for k, v in r.items() if k in Run.__dataclass_fields__}) for r in latest.values()]
    return sorted(runs, key=lambda r: r.started)


def overlapping(runs: Iterable[Run], now: float | None = None) -> list[tuple[Run, Run]]:
    """Pairs of runs of the same service and environment whose [started, ended] intervals overlap.

    A run with no end counts as running until ``now`` (default: the current time). Runs that only touch
    (one ends the instant the next starts) do not overlap. Each pair is (earlier start, later start),
    in the order of the earlier run's start.
    """
    moment = time.time() if now is None else now
    by_target: dict[tuple[str, str], list[Run]] = {}
    for run in sorted(runs, key=lambda r: r.started):
        by_target.setdefault(run.target, []).append(run)
    pairs = []
    for group in by_target.values():
        for i, first in enumerate(group):
            for second in group[i + 1 :]:
                if second.started < first.end_or(moment) and first.started < second.end_or(moment):
                    pairs.append((first, second))
    return sorted(pairs, key=lambda pair: (pair[0].started, pair[1].started))


class RecordedEvents:
    def __init__(self) -> None:
        self.events: list[ServiceEvent] = []

    def publish(self, event: ServiceEvent) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


def deploy_config_data(
    state_dir: Path,
    services_url: str,
    *,
    command_args: tuple[str, ...] = (),
    webhook_url: str | None = None,
    watch: float = 0.3,
    every: float = 0.1,
    production: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The test config, with `api` deployed by the local program and `web` by the local webhook."""
    data = config_data()
    data["deploys"] = {"watch_seconds": watch, "check_every_seconds": every, "lock_ttl_seconds": 30}
    data["environments"]["production"].update(production or {})

    def checks(service: str) -> dict[str, Any]:
        return {
            env: {
                "health": [{"url": f"{services_url}/{service}/{env}/health", "name": "http"}],
                "version_url": f"{services_url}/{service}/{env}/version",
            }
            for env in ("staging", "production")
        }

    data["services"]["api"] = {
        "environments": checks("api"),
        "change_url": "https://github.com/example/api/compare/{previous}...{version}",
        "deploy": {
            "type": "command",
            "timeout_seconds": 20,
            "argv": [sys.executable, str(PROGRAM), str(state_dir), "{service}", "{environment}", "{version}", *command_args],
        },
    }
    if webhook_url:
        data["services"]["web"] = {
            "environments": checks("web"),
            "version_pattern": "git_sha",
            "deploy": {
                "type": "webhook",
                "url": webhook_url,
                "secret_env": WEBHOOK_SECRET_ENV,
                "retries": 2,
                "backoff_seconds": 0.05,
                "timeout_seconds": 5,
            },
        }
    return data


def deploy_config(state_dir: Path, services_url: str, **kwargs: Any) -> OpsConfig:
    return parse_config(deploy_config_data(state_dir, services_url, **kwargs), "test")


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "deployed"
    path.mkdir()
    return path


@pytest.fixture
def services_double(state_dir: Path) -> Iterator[ServiceDouble]:
    double = ServiceDouble(state_dir).start()
    yield double  # type: ignore[misc]
    double.stop()


def deployed_log(state_dir: Path) -> list[str]:
    log = state_dir / "deploys.log"
    return log.read_text().splitlines() if log.exists() else []
