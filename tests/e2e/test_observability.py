"""What operators see of a running opsbot: Prometheus metrics on `opsbot serve` and `opsbot worker`, JSON log lines,
and no secret in any of it. Real processes, signed requests, the Slack emulator, the real deploy program."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import sqlalchemy as sa

from bot.config import OpsConfig
from bot.console.slack_emulator import Posted, SlackEmulator
from tests.deploy_kit import (  # noqa: F401 - fixtures
    WEBHOOK_SECRET_ENV,
    ServiceDouble,
    deploy_config,
    deployed_log,
    services_double,
    state_dir,
)
from tests.e2e.test_http_server import free_port, post_command
from tests.faults import WorkerProcess, spawn_worker  # noqa: F401 - fixture
from tests.support import Bot

DEPLOYS = "C0DEPLOYS"
MARKER = "SEKRITMARKER"


@pytest.fixture
def config(state_dir: Path, services_double: ServiceDouble) -> OpsConfig:
    return deploy_config(state_dir, services_double.base_url)


@pytest.fixture
def app(emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str, config: OpsConfig) -> Bot:
    return Bot(emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=config)


@contextlib.contextmanager
def serving(opsbot: Bot, tmp_path: Path, *args: str, **env: str) -> Iterator[str]:
    """`opsbot serve *args` on a free port with the bot's environment (plus ``env``); its base URL."""
    port = free_port()
    environment = {**opsbot.environment(tmp_path / "opsbot.yml"), "PORT": str(port), "WEB_CONCURRENCY": "2", **env}
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", *args], env=environment, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60  # gunicorn and its workers start slowly on a loaded machine
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def posted(app: Bot, text: str, timeout: float = 20.0) -> Posted:
    return app.emulator.wait_for(
        lambda: next((m for m in reversed(app.emulator.in_channel(DEPLOYS)) if text in m.seen()), None), timeout
    )


def sample(exposition: str, metric: str, /, **labels: str) -> float | None:
    """The value of one sample in Prometheus text, labels in any order; None when it is not there."""
    for line in exposition.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != metric:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if found == labels:
            return float(match.group(3))
    return None


def eventually_metric(url: str, metric: str, /, timeout: float = 30.0, **labels: str) -> tuple[float | None, str]:
    deadline = time.monotonic() + timeout
    while True:
        text = httpx.get(url, timeout=5).text
        value = sample(text, metric, **labels)
        if value is not None or time.monotonic() > deadline:
            return value, text
        time.sleep(0.2)


def json_lines(log: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


def test_serve_counts_a_deploy_its_command_and_a_rate_limited_slack_call_on_metrics(
    app: Bot, tmp_path: Path, state_dir: Path
) -> None:
    app.emulator.fail("chat.postMessage", "ratelimited", status=429, retry_after=1)
    with serving(app, tmp_path, "--embedded-redis", LOG_FORMAT="json") as base:
        response, url = post_command(app, base, 'deploy v1.2.3 api to staging --reason "metrics"')
        assert response.status_code == 200
        assert "v1.2.3" in app.reply_to(url, 10).seen()
        posted(app, "✅ Deployment of v1.2.3 to staging completed")
        assert [line.split()[:3] for line in deployed_log(state_dir)] == [["api", "staging", "v1.2.3"]]

        value, metrics = eventually_metric(base + "/metrics", "opsbot_deploys_total", kind="deploy", outcome="succeeded")
        assert value == 1.0, metrics
        (tmp_path / "metrics.txt").write_text(metrics)  # what an operator's curl sees, kept for a look after a failure
        assert 'opsbot_deploys_total{kind="deploy",outcome="succeeded"} 1.0' in metrics
        assert sample(metrics, "opsbot_requests_total", kind="command", name="deploy", outcome="requested") == 1.0
        assert sample(metrics, "opsbot_slack_api_calls_total", method="chat.postMessage", status="429") == 1.0
        assert sample(metrics, "opsbot_approvals_total", kind="deploy", outcome="approved") is None  # staging needs none
        assert (sample(metrics, "opsbot_ack_duration_seconds_count") or 0) >= 1
        assert sample(metrics, "opsbot_outbox_pending") is not None
        assert sample(metrics, "opsbot_health_checks_total", result="healthy") is not None
    lines = json_lines((tmp_path / "serve.log").read_text())
    request = next(line for line in lines if line.get("command") == "deploy")
    assert request["user"] == "U0DEV" and request["outcome"] == "requested" and request["kind"] == "command"
    assert request["trigger_id"] and isinstance(request["duration_ms"], float)


def test_the_worker_serves_its_metrics_on_opsbot_metrics_port(
    emulator: SlackEmulator,
    pg_url: str,
    redis_client: redis.Redis,
    redis_url: str,
    redis_prefix: str,
    config: OpsConfig,
    tmp_path: Path,
    spawn_worker: Callable[..., WorkerProcess],
) -> None:
    app = Bot(
        emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=config, redis_url=redis_url
    )
    port = free_port()
    spawn_worker({**app.environment(tmp_path / "opsbot.yml"), "OPSBOT_METRICS_PORT": str(port), "LOG_FORMAT": "json"})
    app.command('deploy v1.2.3 api to staging --reason "metrics"')
    posted(app, "✅ Deployment of v1.2.3 to staging completed")
    value, metrics = eventually_metric(
        f"http://127.0.0.1:{port}/metrics", "opsbot_deploys_total", timeout=30, kind="deploy", outcome="succeeded"
    )
    assert value == 1.0, metrics
    assert sample(metrics, "opsbot_requests_total", kind="job", name="deploys.run", outcome="ok") == 1.0


def test_no_secret_appears_in_the_logs_of_a_deploy_and_an_incident(
    emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str, config: OpsConfig, tmp_path: Path
) -> None:
    emulator.token = f"xoxb-{MARKER}-bot-token"
    password_url = sa.engine.make_url(pg_url).set(password=f"{MARKER}-db-password").render_as_string(hide_password=False)
    app = Bot(emulator=emulator, db_url=password_url, redis_client=redis_client, prefix=redis_prefix, config=config)
    app.secret = f"{MARKER}-signing-secret"
    secrets = {
        "SLACK_APP_TOKEN": f"xapp-{MARKER}-app-token",
        WEBHOOK_SECRET_ENV: f"{MARKER}-webhook-secret",
        "LOG_LEVEL": "DEBUG",
        "LOG_FORMAT": "json",
    }
    with serving(app, tmp_path, "--embedded-redis", **secrets) as base:
        response, url = post_command(app, base, 'deploy v1.2.3 api to staging --reason "secrets"')
        assert response.status_code == 200
        posted(app, "✅ Deployment of v1.2.3 to staging completed")
        response, url = post_command(app, base, 'incident declare P2 Checkout errors --service api --impact "slow"')
        assert "Declared" in app.reply_to(url, 10).seen()
        post_command(app, base, "incident list")
        forged, _ = post_command(app, base, "locks", secret="wrong-secret")
        assert forged.status_code == 401
    log = (tmp_path / "serve.log").read_text()
    assert len(log.splitlines()) > 10 and '"command": "deploy"' in log
    assert MARKER not in log
    assert "[redacted]" not in log  # nothing even tried: the scrubber (bot.logs) is only a backstop


def test_approvals_and_their_clicks_are_counted_by_outcome(app: Bot) -> None:
    app.command('deploy v1.2.3 api to production --reason "release 42"', user="U0APPROVER1")
    request = posted(app, "Approval needed: Deploy v1.2.3 of api to production")
    app.click(request, "Approve", "U0APPROVER1")  # the two-person rule refuses it
    app.click(request, "Approve", "U0APPROVER2")
    app.click(request, "Approve", "U0APPROVER3")
    posted(app, "✅ Deployment of v1.2.3 to production completed")
    metrics = app.services.metrics.exposition().decode()
    assert sample(metrics, "opsbot_approvals_total", kind="deploy", outcome="approved") == 1.0
    assert sample(metrics, "opsbot_requests_total", kind="action", name="approve", outcome="approved") == 2.0
    assert sample(metrics, "opsbot_requests_total", kind="action", name="approve", outcome="denied") == 1.0
    assert sample(metrics, "opsbot_deploys_total", kind="deploy", outcome="succeeded") == 1.0


def test_metrics_of_every_gunicorn_worker_add_up_whichever_answers_the_scrape(app: Bot, tmp_path: Path, redis_url: str) -> None:
    folder = tmp_path / "prometheus"
    folder.mkdir()
    with serving(app, tmp_path, REDIS_URL=redis_url, WEB_CONCURRENCY="2", PROMETHEUS_MULTIPROC_DIR=str(folder)) as base:
        for _ in range(12):
            response, url = post_command(app, base, "locks", user="U0VIEWER")
            assert response.status_code == 200
            app.reply_to(url)
        scrapes = {
            sample(httpx.get(base + "/metrics").text, "opsbot_requests_total", kind="command", name="locks", outcome="ok")
            for _ in range(6)
        }
    log = (tmp_path / "serve.log").read_text()
    workers = set(re.findall(r"Booting worker with pid: (\d+)", log))
    # Commands are counted where they ran: in a gunicorn worker's work process (bot/work_processes.py), or in the
    # worker itself while its work process was starting.
    processes = workers | set(re.findall(r"work process (\d+) started", log))
    files = {path.name for path in folder.glob("counter_*.db")}
    assert len(workers) == 2 and len(processes) == 4 and files and files <= {f"counter_{pid}.db" for pid in processes}
    assert scrapes == {12.0}
