"""Fan-out benchmark: 200 (or 1,000) health endpoints on one local server, one of which never answers.

Prints, from one run, the wall time of `/ops health all` (through the dispatcher: parse, role check,
the concurrent fan-out, the message layout, audit) next to the per-check timeout, and of the same
checks made one after another. Asserts nothing: the figures go in docs/health.md.

    python bench/health_fanout.py [--endpoints 200] [--latency-ms 20] [--timeout-ms 2000] [--cap N]

``--cap`` sets health.concurrency for the dispatcher rows; without it they run at the config's default.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bot.adapters.http_health import HttpHealthProbe
from bot.adapters.sql.engine import upgrade
from bot.config import OpsConfig, parse_config
from bot.config.health import HealthSettings
from bot.domain.shared.policy import Actor
from bot.settings import Settings
from bot.wiring import build_services


class FleetServer(ThreadingHTTPServer):
    daemon_threads = True
    # Each real service has an accept queue of its own; one of 512 for the whole fleet overflowed when 1,000
    # connections came at once (the kernel drops the SYNs, and the client tries again a second later).
    request_queue_size = 4096


def run_fleet(latency_ms: int, silent: int, ready: Any) -> None:
    """The fleet in its own process, as real services are: its threads do not share the probe's interpreter."""
    server = start_fleet(latency_ms, silent, threading.Event())
    ready.put(int(server.server_address[1]))
    threading.Event().wait()


def start_fleet(latency_ms: int, silent: int, stopping: threading.Event) -> FleetServer:
    """``/svc/N/health`` answers healthy after ``latency_ms``; endpoint ``silent`` never answers."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            number = int(self.path.split("/")[2])
            if number == silent:
                stopping.wait(600)
                return
            time.sleep(latency_ms / 1000)
            body = json.dumps({"status": "healthy"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = FleetServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def fleet_config(port: int, endpoints: int, timeout_ms: int, concurrency: int | None) -> OpsConfig:
    check = {"expect_json": {"status": "healthy"}, "timeout_ms": timeout_ms, "warn_ms": 500, "critical_ms": timeout_ms}
    services = {
        f"svc-{i:03d}": {
            "environments": {"production": {"health": [{**check, "url": f"http://127.0.0.1:{port}/svc/{i}/health"}]}}
        }
        for i in range(endpoints)
    }
    return parse_config(
        {
            "channels": {"deployments": "C0DEPLOYS", "incidents": "C0INCIDENTS", "alerts": "C0ALERTS"},
            "roles": {"admin": ["U0ADMIN"], "approver": [], "deployer": [], "viewer": ["*"]},
            "environments": {"production": {}},
            "services": services,
            "health": {} if concurrency is None else {"concurrency": concurrency},
        },
        "bench",
    )


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=200)
    parser.add_argument("--latency-ms", type=int, default=20, help="how long each healthy endpoint takes to answer")
    parser.add_argument("--timeout-ms", type=int, default=2000, help="the per-check timeout")
    parser.add_argument("--cap", type=int, default=None, help="health.concurrency for the dispatcher runs (default: its default)")
    args = parser.parse_args()
    cap = HealthSettings().concurrency if args.cap is None else args.cap

    silent = args.endpoints * 2 // 3
    ctx = mp.get_context("spawn")
    ready = ctx.Queue()
    fleet = ctx.Process(target=run_fleet, args=(args.latency_ms, silent, ready), daemon=True)
    fleet.start()
    port = int(ready.get(timeout=30))
    pairs = [(f"svc-{i:03d}", "production") for i in range(args.endpoints)]
    timeout_s = args.timeout_ms / 1000
    rows: list[tuple[str, int, float, str]] = []

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        config = fleet_config(port, args.endpoints, args.timeout_ms, args.cap)
        services = build_services(Settings(database_url=url), config=config, allow_embedded_redis=True)
        actor = Actor("U0ADMIN", source="console")
        for label in ("first in the process", "again"):  # the first pays for imports and the first connections
            wall, reply = timed(lambda: services.dispatcher.run_text("health all", actor))
            blocks = len(services.renderer.render(reply.message)["blocks"])
            counts = reply.message.counts
            rows.append(
                (
                    f"/ops health all (dispatcher), {label}",
                    cap,
                    wall,
                    f"{counts.healthy} healthy, {counts.failed} failed; {blocks} blocks",
                )
            )
        services.local_worker.close()  # type: ignore[attr-defined]

    for each in sorted({50, args.endpoints}):
        probe = HttpHealthProbe(fleet_config(port, args.endpoints, args.timeout_ms, each), {})
        wall, reports = timed(partial(probe.check_many, pairs))
        rows.append(("fan-out in the domain engine (check_many)", each, wall, _verdicts(reports)))

    one_by_one = HttpHealthProbe(fleet_config(port, args.endpoints, args.timeout_ms, 1), {})
    wall, reports = timed(partial(one_by_one.check_many, pairs))
    rows.append(("one after another (same engine, cap 1)", 1, wall, _verdicts(reports)))
    wall, reports = timed(lambda: [one_by_one.check(s, e) for s, e in pairs])
    rows.append(("one after another (a check() call each)", 1, wall, _verdicts(reports)))

    fleet.terminate()
    print(
        f"{args.endpoints} endpoints on one local server (its own process), endpoint {silent} never answers; healthy ones answer in "
        f"{args.latency_ms} ms; per-check timeout {args.timeout_ms} ms\n"
    )
    print(f"| {'run':<50} | {'cap':>4} | {'wall s':>7} | {'÷ timeout':>9} | result")
    print(f"|{'-' * 52}|{'-' * 6}|{'-' * 9}|{'-' * 11}|{'-' * 40}")
    for name, each, wall, note in rows:
        print(f"| {name:<50} | {each:>4} | {wall:>7.2f} | {wall / timeout_s:>8.2f}× | {note}")


def _verdicts(reports: list[Any]) -> str:
    failed = [f"{r.service}: {r.checks[0].reason}" for r in reports if r.status != "healthy"]
    return f"{len(reports) - len(failed)} healthy, {len(failed)} failed ({'; '.join(failed)[:60]})"


if __name__ == "__main__":
    main()
