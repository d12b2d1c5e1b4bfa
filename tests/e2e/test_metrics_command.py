"""`/ops metrics <service> [environment]` on a real Prometheus: each guardrail now (✅ ⚠️ ❌ ❔) and a chart of the
window (`prometheus.chart_window`, 90 s here) with the deploys marked, uploaded through files.uploadV2 to the
emulator, and printed as a path by the console.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from matplotlib.image import imread

from bot.config import dump_config, parse_config
from bot.console.slack_emulator import Posted, SlackEmulator
from tests.deploy_kit import ServiceDouble, deploy_config_data, services_double, state_dir  # noqa: F401 - fixtures
from tests.health_stubs import hang, serving
from tests.prometheus_kit import Behaviour, Metrics, Run, error_rate_query, latency_query, metrics_stack  # noqa: F401
from tests.support import OPS_CHANNEL, Bot, eventually

DEPLOY_GREEN = (0x2C / 255, 0xA0 / 255, 0x2C / 255)  # a successful deploy's line in the chart
SERIES_BLUE = (0x1F / 255, 0x77 / 255, 0xB4 / 255)  # a guardrail's values


def guardrails(run: str) -> list[dict[str, Any]]:
    return [
        {"name": "error_rate", "query": error_rate_query(run), "unit": "ratio", "warn": 0.01, "critical": 0.05},
        {"name": "latency_p95", "query": latency_query(run), "unit": "ms", "warn": 500, "critical": 1000},
    ]


def config_for(state_dir: Path, services_url: str, prometheus_url: str, metrics: list[dict[str, Any]]) -> dict[str, Any]:
    data = deploy_config_data(state_dir, services_url, watch=1.0, every=0.5)
    data["prometheus"] = {"url": prometheus_url, "timeout_ms": 2000, "chart_window": "90s"}
    data["services"]["api"]["environments"]["staging"]["metrics"] = metrics
    return data


@pytest.fixture
def app_for(
    emulator: SlackEmulator,
    pg_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    state_dir: Path,
    services_double: ServiceDouble,
) -> Any:
    def build(prometheus_url: str, metrics: list[dict[str, Any]]) -> Bot:
        data = config_for(state_dir, services_double.base_url, prometheus_url, metrics)
        return Bot(emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=parse_config(data))

    return build


def charts(emulator: SlackEmulator) -> list[Posted]:
    return [m for m in emulator.in_channel(OPS_CHANNEL) if m.files]


def deployed(app: Bot, version: str) -> None:
    app.command(f"deploy {version} to staging")
    app.emulator.wait_for(
        lambda: [m for m in app.emulator.messages if f"Deployment of {version} to staging completed" in m.seen()], 40
    )


def test_each_guardrail_against_its_thresholds_and_a_chart_with_the_deploys_marked(
    metrics_stack: Metrics, state_dir: Path, app_for: Any
) -> None:
    run = "t" + secrets.token_hex(4)
    metrics_stack.app.add(
        run, Run("api", state_dir / "api-staging.version", Behaviour(0.0, 100), {"v2.0.0": Behaviour(0.03, 100)})
    )
    metrics_stack.prometheus.wait_for_history(latency_query(run).replace("{service}", "api"), 10)  # a line to draw
    app = app_for(metrics_stack.prometheus.url, guardrails(run))
    deployed(app, "v1.0.0")
    deployed(app, "v2.0.0")  # 3 % errors: above warn (1 %), under critical (5 %)

    def warned() -> str | None:
        seen = app.command("metrics api staging", timeout=20).seen()
        return seen if "⚠️ `error_rate`" in seen else None  # the 4 s rate window has caught up with v2's errors

    seen = eventually(warned, timeout=30)
    assert re.search(r"⚠️ `error_rate` \*[\d.]+ %\* · warn 1 % · critical 5 %", seen), seen
    assert "above warn 1 %" in seen
    assert re.search(r"✅ `latency_p95` \*(9\d|10\d|110)(\.\d+)? ms\* · warn 500 ms · critical 1000 ms", seen), seen
    assert "The chart of the last 90 s, deploys marked, is posted in this channel." in seen
    chart = charts(app.emulator)[-1]
    [file] = chart.files or []
    assert file["name"] == "metrics-api-staging.png" and "api · staging" in chart.text
    image = imread(file["path"])  # a real PNG: matplotlib reads it back
    assert image.shape[0] > 400 and image.shape[1] > 800
    green = np.all(np.abs(image[:, :, :3] - DEPLOY_GREEN) < 0.12, axis=2)
    columns = np.flatnonzero(green.sum(axis=0) > image.shape[0] * 0.3)  # tall green lines: the two deploys
    assert len(columns) >= 2 and columns.max() - columns.min() > 2  # two lines, apart
    blue = np.all(np.abs(image[:, :, :3] - SERIES_BLUE) < 0.08, axis=2)
    assert blue.sum() > 200  # the series themselves are drawn
    calls = [c.method for c in app.emulator.calls if c.method.startswith("files.")]
    assert calls[-2:] == ["files.getUploadURLExternal", "files.completeUploadExternal"]


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("sum(rate(http_requests_total[1m]", "Prometheus refused the query: "),
        ('http_requests_total{run="nothing-here"}', "the query returned no series"),
        ('vector(1) or label_replace(vector(2), "replica", "b", "", "")', "series where one was expected"),
    ],
)
def test_a_bad_query_reads_unknown_with_the_reason_and_the_chart_says_so(
    metrics_stack: Metrics, app_for: Any, query: str, reason: str
) -> None:
    app = app_for(metrics_stack.prometheus.url, [{"name": "error_rate", "query": query, "critical": 0.05}])
    seen = app.command("metrics api staging", timeout=20).seen()
    assert "❔ `error_rate` *unknown*" in seen and reason in seen
    assert charts(app.emulator), "the chart is still drawn, with the panel saying why it is empty"


def test_prometheus_unreachable_reads_unknown_and_never_a_traceback(app_for: Any) -> None:
    app = app_for("http://127.0.0.1:9", [{"name": "error_rate", "query": "up", "critical": 0.05}])
    seen = app.command("metrics api staging", timeout=20).seen()
    assert "❔ `error_rate` *unknown*" in seen and "Prometheus at http://127.0.0.1:9 is unreachable (ConnectError)" in seen
    assert "Traceback" not in seen


def test_a_slow_prometheus_reads_unknown_within_its_timeout(app_for: Any) -> None:
    with serving({"/api/v1/query": hang, "/api/v1/query_range": hang}) as slow:
        app = app_for(slow.url("").rstrip("/"), [{"name": "error_rate", "query": "up", "critical": 0.05}])
        seen = app.command("metrics api staging", timeout=20).seen()
    assert "❔ `error_rate` *unknown*" in seen and "did not answer within 2000 ms" in seen


def test_a_service_without_metrics_or_an_unknown_one_gets_a_short_answer(metrics_stack: Metrics, app_for: Any) -> None:
    app = app_for(metrics_stack.prometheus.url, [])
    assert "`api` has no metrics in staging" in app.command("metrics api staging").seen()
    assert "Did you mean `api`?" in app.command("metrics apii staging").seen()


def test_the_console_prints_the_charts_path(metrics_stack: Metrics, state_dir: Path, tmp_path: Path) -> None:
    run = "t" + secrets.token_hex(4)
    metrics_stack.app.add(run, Run("api", None, Behaviour(0.0, 100)))
    data = config_for(state_dir, "http://127.0.0.1:9", metrics_stack.prometheus.url, guardrails(run))
    data["roles"]["viewer"].append("U0DEPLOYER")  # the console's default user
    config = tmp_path / "opsbot.yml"
    config.write_text(dump_config(parse_config(data)), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPSBOT_", "DATABASE_URL", "REDIS_URL"))}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'console.db'}", OPSBOT_CONFIG=str(config))
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "console", "-c", "/ops metrics api staging"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    found = re.search(r"🖼  api staging: metrics over the last 90 s: (\S+\.png)", done.stdout)
    assert found, done.stdout
    assert Path(found.group(1)).read_bytes().startswith(b"\x89PNG")
