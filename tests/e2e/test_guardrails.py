"""Metric guardrails on a real Prometheus: deploys verified by what the service's metrics say over the watch window.

Prometheus (Debian's 2.42, started per module) scrapes ``TrafficApp``, whose error rate and latency follow the
version the deploy program wrote: deploying a bad version makes it bad while opsbot watches.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from bot.adapters.prometheus import PrometheusReader
from bot.config import Prometheus, parse_config
from bot.console.slack_emulator import Posted, SlackEmulator
from bot.domain.shared.metrics import MetricUnreadable
from tests.deploy_kit import ServiceDouble, deploy_config_data, services_double, state_dir  # noqa: F401 - fixtures
from tests.prometheus_kit import (  # noqa: F401 - metrics_stack is a fixture
    Behaviour,
    Metrics,
    PrometheusServer,
    Run,
    error_rate_query,
    history,
    latency_query,
    metrics_stack,
    prometheus_binary,
)
from tests.servers import SharedServers
from tests.support import Bot

DEPLOYS = "C0DEPLOYS"
ROOT = Path(__file__).resolve().parents[2]
BASELINE_S = 8
WATCH_S = 6.0


class Target:
    """One test's traffic in the shared Prometheus (its own ``run`` label) and the guardrails that watch it."""

    def __init__(self, stack: Metrics, state_dir: Path, by_version: dict[str, Behaviour]) -> None:
        self.run = "t" + secrets.token_hex(4)
        self.stack = stack
        stack.app.add(self.run, Run("api", state_dir / "api-staging.version", Behaviour(0.0, 100), by_version))

    def guardrails(self) -> list[dict[str, Any]]:
        return [
            {"name": "error_rate", "query": error_rate_query(self.run), "unit": "ratio", "warn": 0.01, "critical": 0.05},
            {
                "name": "latency_p95",
                "query": latency_query(self.run),
                "unit": "ms",
                "warn": 500,
                "critical": 1000,
                "max_increase_percent": 50,
                "baseline_window": f"{BASELINE_S}s",
            },
        ]

    def wait_for_baseline(self) -> None:
        self.stack.prometheus.wait_for_history(latency_query(self.run).replace("{service}", "api"), BASELINE_S)


def make_bot(
    emulator: SlackEmulator,
    pg_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    state_dir: Path,
    services: ServiceDouble,
    prometheus_url: str,
    metrics: list[dict[str, Any]],
    **staging: Any,
) -> Bot:
    data = deploy_config_data(state_dir, services.base_url, watch=WATCH_S, every=1.0)
    data["prometheus"] = {"url": prometheus_url, "timeout_ms": 2000}
    data["environments"]["staging"].update(staging)
    data["services"]["api"]["environments"]["staging"]["metrics"] = metrics
    return Bot(emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=parse_config(data))


@pytest.fixture
def bot_for(
    emulator: SlackEmulator,
    pg_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    state_dir: Path,
    services_double: ServiceDouble,
) -> Any:
    def build(prometheus_url: str, metrics: list[dict[str, Any]], **staging: Any) -> Bot:
        return make_bot(
            emulator, pg_url, redis_client, redis_prefix, state_dir, services_double, prometheus_url, metrics, **staging
        )

    return build


def posted(app: Bot, text: str, timeout: float = 60.0) -> Posted:
    """The newest message in #deployments showing ``text``. A deploy with real Prometheus readings takes about 10 s
    alone; a loaded CI machine has taken over 30 s, so the wait is generous and a timeout says what was posted."""
    try:
        return app.emulator.wait_for(
            lambda: next((m for m in reversed(app.emulator.in_channel(DEPLOYS)) if text in m.seen()), None), timeout
        )
    except TimeoutError:
        seen = [m.seen()[:300] for m in app.emulator.in_channel(DEPLOYS)]
        raise AssertionError(f"no message in #deployments shows {text!r} within {timeout:g} s; it shows: {seen}") from None


def deploy(app: Bot, version: str, outcome: str) -> Posted:
    app.command(f"deploy {version} to staging")
    return posted(app, f"Deployment of {version} to staging {outcome}")


def percent(text: str, name: str) -> float:
    found = re.search(rf"{name}` \*([\d.]+) %\*", text)
    assert found, text
    return float(found.group(1))


def milliseconds(text: str, name: str) -> tuple[float, float]:
    found = re.search(rf"{name}` \*([\d.]+) ms\*.*?baseline ([\d.]+) ms", text)
    assert found, text
    return float(found.group(1)), float(found.group(2))


def test_a_clean_deploy_succeeds_listing_each_guardrails_value(metrics_stack: Metrics, state_dir: Path, bot_for: Any) -> None:
    target = Target(metrics_stack, state_dir, {})
    target.wait_for_baseline()
    app = bot_for(metrics_stack.prometheus.url, target.guardrails())
    done = deploy(app, "v1.0.0", "completed").seen()
    assert "🟢 `error_rate` *0 %*" in done
    latency, baseline = milliseconds(done, "latency_p95")
    assert 90 <= latency <= 110 and 90 <= baseline <= 110
    assert done.count("error_rate") == 1  # listed once, under Metrics
    recorded = app.reads.deploys.history("api", "staging", 1)[0].detail  # type: ignore[union-attr]
    assert "; metrics: error_rate 0 %, latency_p95" in recorded  # the history and the audit keep the values too


def test_an_error_rate_rising_to_10_percent_fails_naming_error_rate_its_value_and_threshold_with_rollback(
    metrics_stack: Metrics, state_dir: Path, bot_for: Any
) -> None:
    target = Target(metrics_stack, state_dir, {"v2.0.0": Behaviour(error_rate=0.10, latency_ms=100)})
    target.wait_for_baseline()
    app = bot_for(metrics_stack.prometheus.url, target.guardrails())
    deploy(app, "v1.0.0", "completed")
    failed = deploy(app, "v2.0.0", "failed verification")
    text = failed.seen()
    assert "failed verification:* metric error_rate" in text and "above critical 5 %" in text
    assert 5 < percent(text, "error_rate") <= 10.5
    assert "Rollback" in text and any(
        e.get("action_id") == "deploy_rollback" for b in failed.blocks for e in b.get("elements", [])
    )
    assert "auto_rollback" not in text
    reply = app.click(failed, "Rollback", "U0DEV2")
    assert "Roll back api to v1.0.0 in staging" in reply[-1]["text"]
    posted(app, "Rolled back api to v1.0.0 in staging")


def test_a_p95_rising_80_percent_over_its_baseline_fails_on_max_increase_percent(
    metrics_stack: Metrics, state_dir: Path, bot_for: Any
) -> None:
    target = Target(metrics_stack, state_dir, {"v2.0.0": Behaviour(error_rate=0.0, latency_ms=180)})
    target.wait_for_baseline()
    app = bot_for(metrics_stack.prometheus.url, target.guardrails())
    failed = deploy(app, "v2.0.0", "failed verification").seen()
    assert "metric latency_p95" in failed and "above the baseline +50 % (" in failed
    latency, baseline = milliseconds(failed, "latency_p95")
    assert 90 <= baseline <= 110 and latency > baseline * 1.5  # below the absolute critical of 1000 ms
    assert "🔴 `latency_p95`" in failed and "🟢 `error_rate`" in failed


def test_a_30_minute_baseline_backfilled_with_promtool_is_what_the_p95_is_held_to(
    metrics_stack: Metrics, state_dir: Path, bot_for: Any, servers: SharedServers
) -> None:
    run = "t" + secrets.token_hex(4)
    until = time.time() - 2
    before = history(run, "api", 30 * 60, Behaviour(error_rate=0.0, latency_ms=120), until=until)
    prometheus = PrometheusServer(prometheus_binary(servers), [metrics_stack.app.target], history=before)
    try:
        by_version = {
            "v2.0.0": Behaviour(error_rate=0.0, latency_ms=240)
        }  # 2x the baseline: p95 reads it once 5 % of the window is new
        metrics_stack.app.add(run, Run("api", state_dir / "api-staging.version", Behaviour(0.0, 100), by_version))
        p95 = latency_query(run)
        # Live samples after the backfilled ones: a window that starts after the backfill's last sample (and its 4 s rate
        # window) has ended, so the backfill alone cannot fill it.
        time.sleep(max(0.0, until + 8 - time.time()))
        prometheus.wait_for_history(p95.replace("{service}", "api"), 5)
        guardrail = {"name": "latency_p95", "query": p95, "unit": "ms", "max_increase_percent": 50, "baseline_window": "30m"}
        app = bot_for(prometheus.url, [guardrail])
        failed = deploy(app, "v2.0.0", "failed verification").seen()
        latency, baseline = milliseconds(failed, "latency_p95")
        assert 115 <= baseline <= 120  # the 30 backfilled minutes at 120 ms, not the last seconds at 100 ms
        assert latency > baseline * 1.5 and "above the baseline +50 % (" in failed
    finally:
        prometheus.close()


def test_auto_rollback_runs_the_rollback_at_once_where_no_approvals_are_needed(
    metrics_stack: Metrics, state_dir: Path, bot_for: Any
) -> None:
    target = Target(metrics_stack, state_dir, {"v2.0.0": Behaviour(error_rate=0.10, latency_ms=100)})
    target.wait_for_baseline()
    app = bot_for(metrics_stack.prometheus.url, target.guardrails(), auto_rollback=True)
    deploy(app, "v1.0.0", "completed")
    failed = deploy(app, "v2.0.0", "failed verification").seen()
    assert "auto_rollback is on in staging" in failed
    done = posted(app, "Rolled back api to v1.0.0 in staging due to auto_rollback: v2.0.0 breached a metric guardrail")
    assert done is not None
    assert (state_dir / "api-staging.version").read_text() == "v1.0.0"
    assert "metric error_rate" not in done.seen()  # the way back lists the readings; their windows still hold v2.0.0
    actions = app.audit_actions()
    assert ("U0DEV", "rollback.auto", "requested") in actions  # in the name of the failed deploy's requester


# ----- bad inputs: each guardrail reads "unknown" with its reason -----


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers: a Prometheus too slow to wait for."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def unreadable(url: str, query: str, timeout_ms: int = 2000) -> str:
    reader = PrometheusReader(Prometheus(url=url, timeout_ms=timeout_ms))
    try:
        with pytest.raises(MetricUnreadable) as raised:
            reader.read(query)
    finally:
        reader.close()
    return raised.value.reason


def test_bad_queries_and_bad_servers_read_unknown_with_their_reason(metrics_stack: Metrics, silent_port: int) -> None:
    url = metrics_stack.prometheus.url
    metrics_stack.prometheus.wait_for_history("up", 2)  # scraped at least once: `up` is a series of its own
    assert (
        unreadable(url, "sum(rate(http_requests_total[1m])")
        == "Prometheus refused the query: 1:34: parse error: unclosed left parenthesis"
    )
    assert unreadable(url, 'http_requests_total{service="nothing-here"}').startswith("the query returned no series")
    several = unreadable(url, "up or vector(1)")
    assert several.startswith('the query returned 2 series where one was expected ({__name__="up", instance=')
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    free = closed.getsockname()[1]
    closed.close()
    assert unreadable(f"http://127.0.0.1:{free}", "up") == f"Prometheus at http://127.0.0.1:{free} is unreachable (ConnectError)"
    assert unreadable(f"http://127.0.0.1:{silent_port}", "up", timeout_ms=300) == (
        f"Prometheus at http://127.0.0.1:{silent_port} did not answer within 300 ms"
    )


def test_an_unreachable_prometheus_warns_by_default_and_fails_with_on_unknown_fail(
    metrics_stack: Metrics, state_dir: Path, bot_for: Any
) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    gone = f"http://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()
    guardrails = Target(metrics_stack, state_dir, {}).guardrails()[:1]
    app = bot_for(gone, guardrails, on_unknown="fail")
    failed = deploy(app, "v1.0.0", "failed verification").seen()
    assert f"❔ `error_rate` unknown: Prometheus at {gone} is unreachable (ConnectError)" in failed
    assert "(on_unknown: fail)" in failed


def test_an_unknown_guardrail_only_warns_by_default(metrics_stack: Metrics, state_dir: Path, bot_for: Any) -> None:
    guardrails = [{"name": "error_rate", "query": 'sum(nothing_here{service="{service}"})', "critical": 0.05}]
    app = bot_for(metrics_stack.prometheus.url, guardrails)
    done = deploy(app, "v1.0.0", "completed").seen()
    assert "❔ `error_rate` unknown: the query returned no series" in done


# ----- check-config -----


def check_config(tmp_path: Path, prometheus_url: str, query: str, path: str = "") -> subprocess.CompletedProcess[str]:
    data = deploy_config_data(tmp_path, "http://127.0.0.1:1")
    data["prometheus"] = {"url": prometheus_url}
    data["services"]["api"]["environments"]["production"]["metrics"] = [{"name": "error_rate", "query": query, "critical": 0.05}]
    config = tmp_path / "opsbot.yml"
    config.write_text(yaml.safe_dump(data))
    env = {"PATH": path} if path else {}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "check-config", str(config), "--skip-environment"],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("OPSBOT_")}, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_config_parses_each_query_with_prometheus_then_promtool(metrics_stack: Metrics, tmp_path: Path) -> None:
    bad = 'sum(rate(http_requests_total{service="{service}"}[1m])'
    by_api = check_config(tmp_path, metrics_stack.prometheus.url, bad)
    assert by_api.returncode == 1
    assert (
        "services.api.environments.production.metrics[0].query: not valid PromQL: 1:49: parse error: unclosed left parenthesis"
        in by_api.stderr
    )
    good = check_config(tmp_path, metrics_stack.prometheus.url, 'sum(rate(http_requests_total{service="{service}"}[1m]))')
    assert (
        good.returncode == 0
        and f"metrics: 1 guardrail query parsed by Prometheus at {metrics_stack.prometheus.url}" in good.stdout
    )
    by_promtool = check_config(tmp_path, "http://127.0.0.1:1", bad)
    assert by_promtool.returncode == 1 and "not valid PromQL: 1:49: parse error: unclosed left parenthesis" in by_promtool.stderr
    neither = check_config(tmp_path, "http://127.0.0.1:1", bad, path=str(Path(sys.executable).parent))
    assert neither.returncode == 0
    assert (
        "metrics: the 1 guardrail query could not be checked: Prometheus at http://127.0.0.1:1 is unreachable" in neither.stdout
    )
    assert "promtool is not installed" in neither.stdout


class BearerProxy:
    """A reverse proxy in front of the real Prometheus that wants ``Authorization: Bearer <token>`` (as a
    Prometheus behind an auth proxy does); it answers 401 otherwise."""

    def __init__(self, upstream: str, token: str) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.seen.append(self.headers.get("Authorization", ""))
                if self.headers.get("Authorization") != f"Bearer {token}":
                    status, body = 401, b"Unauthorized\n"
                else:
                    answer = httpx.get(upstream + self.path, timeout=5)
                    status, body = answer.status_code, answer.content
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.seen: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_bearer_token_comes_from_token_env_and_never_shows_in_a_reason(metrics_stack: Metrics) -> None:
    proxy = BearerProxy(metrics_stack.prometheus.url, "s3cret-token")
    settings = Prometheus(url=proxy.url, token_env="PROMETHEUS_TOKEN")
    try:
        good = PrometheusReader(settings, environ={"PROMETHEUS_TOKEN": "s3cret-token"})
        assert good.read("vector(1)") == 1.0
        wrong = PrometheusReader(settings, environ={"PROMETHEUS_TOKEN": "wrong"})
        with pytest.raises(MetricUnreadable) as raised:
            wrong.read("vector(1)")
        assert (
            raised.value.reason == f"Prometheus at {proxy.url} answered 401: check the token in the prometheus.token_env variable"
        )
        assert "wrong" not in raised.value.reason
        assert proxy.seen == ["Bearer s3cret-token", "Bearer wrong"]
    finally:
        proxy.close()
