"""Metric guardrails benchmark: one verification round with 5 guardrails beside a health-only round, in one run.

Starts Debian's ``prometheus`` on loopback (temporary data directory) scraping the test traffic app
(``tests/prometheus_kit.py``), waits for a baseline's worth of history, then times ``verification.watch`` with a
zero watch window (exactly one round) through the real health engine against a local health endpoint:

- health only: the round as it was before guardrails;
- + 5 guardrails, first round: also reads the baselines (one subquery per guardrail with ``max_increase_percent``);
- + 5 guardrails, later rounds: the steady cost per round of the watch window (baselines are read once).

The three kinds of round alternate, so the machine's load weighs on each alike. Prints medians and p95s in ms and the extra cost (target: ≤ 50 ms more per round). Asserts nothing.

    python bench/metrics_verification.py [--rounds 40] [--baseline-seconds 10]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.adapters.http_health import HttpHealthProbe
from bot.adapters.prometheus import PrometheusReader
from bot.config import OpsConfig, parse_config
from bot.domain.deploys import verification
from bot.domain.deploys.guardrails import GuardrailWatch
from bot.domain.shared.ports import SystemClock
from tests.prometheus_kit import Behaviour, PrometheusServer, Run, TrafficApp, error_rate_query, latency_query
from tests.support import config_data


def start_health() -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"status": "healthy", "version": "v2.0.0"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def five_guardrails(baseline_seconds: int) -> list[dict[str, Any]]:
    window = f"{baseline_seconds}s"
    return [
        {"name": "error_rate", "query": error_rate_query("bench"), "unit": "ratio", "warn": 0.01, "critical": 0.05},
        {"name": "error_rate_vs_before", "query": error_rate_query("bench"), "unit": "ratio", "max_increase_percent": 400,
         "baseline_window": window},
        {"name": "latency_p95", "query": latency_query("bench"), "unit": "ms", "warn": 500, "critical": 1000,
         "max_increase_percent": 50, "baseline_window": window},
        {"name": "latency_p99", "query": latency_query("bench").replace("0.95", "0.99"), "unit": "ms", "warn": 800,
         "critical": 1500},
        {"name": "latency_p50", "query": latency_query("bench").replace("0.95", "0.5"), "unit": "ms",
         "max_increase_percent": 50, "baseline_window": window},
    ]  # fmt: skip


def config(health_url: str, prometheus_url: str, guardrails: list[dict[str, Any]]) -> OpsConfig:
    data = config_data()
    data["prometheus"] = {"url": prometheus_url, "timeout_ms": 2000}
    data["deploys"] = {"watch_seconds": 0, "check_every_seconds": 1}
    target = {"health": [{"url": f"{health_url}/health", "name": "http"}], "version_url": f"{health_url}/version"}
    data["services"]["api"] = {"environments": {"production": {**target, "metrics": guardrails}}}
    return parse_config(data)


def timed(rounds: int, *kinds: Callable[[], object]) -> list[list[float]]:
    """Each kind of round ``rounds`` times, interleaved (A B C A B C …) so that the machine's load weighs on all alike."""
    for one in kinds:
        one()  # warm the connections
    times: list[list[float]] = [[] for _ in kinds]
    for _ in range(rounds):
        for one, spent in zip(kinds, times, strict=True):
            started = time.perf_counter()
            one()
            spent.append((time.perf_counter() - started) * 1000)
    return times


def line(label: str, times: list[float], base: list[float] | None = None) -> str:
    median, p95 = statistics.median(times), sorted(times)[int(len(times) * 0.95) - 1]
    extra = f"   (+{median - statistics.median(base):5.1f} ms median)" if base else ""
    return f"{label:<34} median {median:6.1f} ms   p95 {p95:6.1f} ms{extra}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--baseline-seconds", type=int, default=10)
    args = parser.parse_args()
    exe = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not Path(exe).exists():
        print("prometheus is not installed: apt install prometheus")
        return 2
    app = TrafficApp()
    app.add("bench", Run("api", None, Behaviour(0.002, 100)))
    prometheus = PrometheusServer(exe, [app.target])
    health = start_health()
    try:
        prometheus.wait_for_history(latency_query("bench").replace("{service}", "api"), args.baseline_seconds)
        health_url = f"http://127.0.0.1:{health.server_address[1]}"
        bare = config(health_url, prometheus.url, [])
        guarded = config(health_url, prometheus.url, five_guardrails(args.baseline_seconds))
        clock = SystemClock()
        probe = HttpHealthProbe(guarded)
        reader = PrometheusReader(guarded.prometheus)  # type: ignore[arg-type]

        def health_only() -> None:
            assert verification.watch(bare, clock, probe, "api", "production", "v2.0.0").ok

        def first_round() -> None:
            verdict = verification.watch(guarded, clock, probe, "api", "production", "v2.0.0", metrics=reader, since=clock.now())
            assert verdict.ok and all(r.status != "unknown" for r in verdict.guardrails), verdict.summary

        steady = GuardrailWatch(
            reader, guarded.services["api"].environments["production"].metrics, "api", "production", clock.now()
        )
        steady.round()

        def later_round() -> None:
            verdict = verification.watch(bare, clock, probe, "api", "production", "v2.0.0")
            readings = steady.round()
            assert verdict.ok and all(r.status != "unknown" for r in readings)

        base, first, later = timed(args.rounds, health_only, first_round, later_round)
        print(f"one verification round, {args.rounds} times each (interleaved), Prometheus {prometheus.url} (scrape 1 s)")
        print(line("health + version only", base))
        print(line("+ 5 guardrails, first round", first, base))
        print(line("+ 5 guardrails, later rounds", later, base))
        print("readings:", ", ".join(r.line() for r in steady.latest))
        reader.close()
    finally:
        health.shutdown()
        prometheus.close()
        app.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
