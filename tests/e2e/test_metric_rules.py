"""Metric rules of health watches on a real Prometheus: ``error_rate > 0.05 for 2s -> P0`` fires one alert across
two real `opsbot worker` processes and recovers once; its buttons declare a P0 and roll back the last deploy.

Prometheus (Debian's 2.42, started per module by tests/prometheus_kit.py) scrapes ``TrafficApp``, whose error rate
follows the version written in a file: the tests write it (or a deploy does) to make the service bad and good.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue

from bot.adapters.redis.watches import RedisWatchStore
from bot.config import OpsConfig, parse_config
from bot.console.slack_emulator import Posted, SlackEmulator
from bot.domain.health.watches import chain_key
from bot.domain.shared.policy import Actor
from bot.domain.shared.ports import SystemClock
from tests.deploy_kit import ServiceDouble, deploy_config_data, services_double, state_dir  # noqa: F401 - fixtures
from tests.e2e.incident_helpers import last_view
from tests.fakes import FakeJobs
from tests.health_stubs import StubServer, Switch, closed_port, hang, serving
from tests.prometheus_kit import Behaviour, Metrics, Run, error_rate_query, metrics_stack  # noqa: F401 - a fixture
from tests.support import Bot, config_data, eventually, start_emulator

ALERTS = "C0ALERTS"
RULE = "error_rate > 0.05 for 2s -> P0"


def guardrail(run: str) -> dict[str, Any]:
    # warn only, far above the rule: deploy verification lets the bad version through, the watch catches it
    return {"name": "error_rate", "query": error_rate_query(run), "unit": "ratio", "warn": 0.5}


def watch(environment: str, rules: list[str]) -> dict[str, Any]:
    return {"services": ["api"], "environments": [environment], "interval": "1s", "failures": 3, "metric_rules": rules}


def alerts(emulator: SlackEmulator, word: str) -> list[Posted]:
    return [m for m in emulator.in_channel(ALERTS) if word in m.text]


def ticks(redis_client: redis.Redis, prefix: str, target: str) -> int:
    return int((RedisWatchStore(redis_client, SystemClock(), prefix).load(target) or {}).get("ticks", 0))


def wait_ticks(redis_client: redis.Redis, prefix: str, target: str, more: int) -> None:
    """Let ``more`` further ticks of the watch happen (a state read, not a sleep)."""
    goal = ticks(redis_client, prefix, target) + more
    eventually(lambda: ticks(redis_client, prefix, target) >= goal, timeout=30)


@pytest.fixture
def health_server() -> Iterator[StubServer]:
    with serving({"/health": Switch(healthy=True)}) as running:
        yield running


@pytest.fixture
def queue_cleanup(redis_url: str, redis_prefix: str) -> Iterator[None]:
    """Drop the watch chains this test's workers left scheduled in its own RQ queue."""
    yield
    queue = Queue(f"{redis_prefix}jobs", connection=redis.Redis.from_url(redis_url))
    for job_id in queue.scheduled_job_registry.get_job_ids():
        queue.scheduled_job_registry.remove(job_id, delete_job=True)
    queue.delete(delete_jobs=True)


def test_a_metric_rule_fires_one_alert_with_two_workers_and_recovers_once(
    metrics_stack: Metrics,
    health_server: StubServer,
    pg_url: str,
    redis_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    tmp_path: Path,
    queue_cleanup: None,
) -> None:
    run, version = "t" + secrets.token_hex(4), tmp_path / "api.version"
    version.write_text("good")
    metrics_stack.app.add(run, Run("api", version, Behaviour(0.0, 100), {"bad": Behaviour(0.10, 100)}))
    data = config_data(prometheus={"url": metrics_stack.prometheus.url, "timeout_ms": 2000})
    data["services"]["api"] = {
        "environments": {
            "production": {"health": [{"url": health_server.url(), "timeout_ms": 1000}], "metrics": [guardrail(run)]}
        }
    }
    data["health"] = {"watches": [watch("production", [RULE])]}
    config = parse_config(data, "test")
    emulator = start_emulator(config)
    try:
        app = Bot(
            emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=config, redis_url=redis_url
        )
        with app.worker(tmp_path), app.worker(tmp_path):
            eventually(lambda: "`: ok" in app.command("health watches").seen(), timeout=30)  # read, below the threshold
            version.write_text("bad")
            [fired] = emulator.wait_for(lambda: alerts(emulator, "🔴"), timeout=40)
            wait_ticks(redis_client, redis_prefix, "api/production", 4)  # still bad, checked again by both workers
            assert "firing" in app.command("health watches").seen()
            version.write_text("good")
            [recovered] = emulator.wait_for(lambda: alerts(emulator, "🟢"), timeout=40)
            wait_ticks(redis_client, redis_prefix, "api/production", 4)
        assert len(alerts(emulator, "🔴")) == 1 and len(alerts(emulator, "🟢")) == 1
        assert fired.text.startswith("🔴 api production: error_rate ") and fired.text.endswith("(P0)")
        assert "> 5 % for " in fired.seen() and f"rule `{RULE}`" in fired.seen()  # the text field escapes > as Slack wants
        assert [b["text"]["text"] for b in fired.buttons()] == ["Declare incident", "Roll back the last deploy of api"]
        context = app.services.health.alert_context(fired.buttons()[0]["value"])
        assert (context["service"], context["environment"], context["severity_hint"]) == ("api", "production", "P0")
        assert recovered.text.startswith("🟢 api production: error_rate back to ") and not recovered.buttons()
        actions = [action for _, action, _ in app.audit_actions()]
        assert actions.count("health.metric_fired") == 1 and actions.count("health.metric_recovered") == 1
    finally:
        emulator.stop()


@pytest.fixture
def deploy_bot(
    metrics_stack: Metrics,
    emulator: SlackEmulator,
    pg_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    state_dir: Path,
    services_double: ServiceDouble,
) -> Bot:
    run = "t" + secrets.token_hex(4)
    by_version = {"v2.0.0": Behaviour(0.10, 100)}
    metrics_stack.app.add(run, Run("api", state_dir / "api-staging.version", Behaviour(0.0, 100), by_version))
    data = deploy_config_data(state_dir, services_double.base_url, watch=2.0, every=1.0)
    data["prometheus"] = {"url": metrics_stack.prometheus.url, "timeout_ms": 2000}
    data["services"]["api"]["environments"]["staging"]["metrics"] = [guardrail(run)]
    data["health"] = {"watches": [watch("staging", [RULE])]}
    return Bot(emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=parse_config(data))


def deployed(app: Bot, version: str) -> None:
    app.command(f"deploy {version} to staging")
    app.emulator.wait_for(
        lambda: [m for m in app.emulator.messages if f"Deployment of {version} to staging completed" in m.seen()], 40
    )


def test_the_alerts_buttons_roll_back_the_last_deploy_and_declare_a_p0(deploy_bot: Bot) -> None:
    app = deploy_bot
    deployed(app, "v1.0.0")
    deployed(app, "v2.0.0")  # 10 % errors: under the guardrail's warn, over the rule
    app.services.health.watches.tick(Actor("opsbot", source="job"), {"service": "api", "environment": "staging"})
    [fired] = app.emulator.wait_for(lambda: alerts(app.emulator, "🔴 api staging: error_rate"), timeout=40)
    refused = app.click(fired, "Roll back the last deploy of api", "U0VIEWER")
    assert "needs the *deployer* role" in refused[0]["text"]
    reply = app.click(fired, "Roll back the last deploy of api", "U0DEV")
    assert "Roll back api to v1.0.0 in staging" in reply[-1]["text"]
    app.emulator.wait_for(lambda: [m for m in app.emulator.messages if "Rolled back api to v1.0.0 in staging" in m.seen()], 40)
    again = app.click(fired, "Roll back the last deploy of api", "U0DEV2")  # the same click twice: nothing more
    assert "`api` in staging has changed since this alert" in again[-1]["text"] and "rollback of v1.0.0" in again[-1]["text"]
    app.emulator.wait_for(lambda: alerts(app.emulator, "🟢 api staging: error_rate back to"), timeout=40)
    answer = app.click(fired, "Declare incident", "U0DEV")
    assert "The declare form is open." in answer[0]["text"]
    fields = {b["block_id"]: b["element"] for b in last_view(app)["blocks"] if b["type"] == "input"}
    assert fields["severity"]["initial_option"]["value"] == "P0" and fields["service"]["initial_option"]["value"] == "api"
    app.services.adapters.jobs.cancel(chain_key("api", "staging"))  # the watch's chain ends with the test
    actions = app.audit_actions()
    assert ("U0VIEWER", "click.deploy_rollback_last", "denied") in actions
    assert ("U0DEV", "click.deploy_rollback_last", "requested") in actions and ("opsbot", "rollback.succeeded", "ok") in actions


@pytest.fixture
def slow_prometheus() -> Iterator[StubServer]:
    with serving({"/api/v1/query": hang}) as running:
        yield running


@pytest.mark.parametrize(
    ("where", "query", "reason"),
    [
        ("unreachable", "up", "is unreachable (ConnectError)"),
        ("slow", "up", "did not answer within 300 ms"),
        ("real", "sum(rate(http_requests_total[1m]", "Prometheus refused the query: "),
        ("real", 'http_requests_total{run="nothing-here"}', "the query returned no series"),
        ("real", 'vector(1) or label_replace(vector(2), "replica", "b", "", "")', "series where one was expected"),
    ],
)
def test_an_unreadable_metric_reads_unknown_with_the_reason_and_fires_nothing(
    metrics_stack: Metrics,
    slow_prometheus: StubServer,
    emulator: SlackEmulator,
    pg_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    health_server: StubServer,
    where: str,
    query: str,
    reason: str,
) -> None:
    urls = {
        "unreachable": f"http://127.0.0.1:{closed_port()}",
        "slow": slow_prometheus.url("").rstrip("/"),
        "real": metrics_stack.prometheus.url,
    }
    data = config_data(prometheus={"url": urls[where], "timeout_ms": 300})
    data["services"]["api"] = {
        "environments": {
            "production": {
                "health": [{"url": health_server.url()}],
                "metrics": [{"name": "error_rate", "query": query, "critical": 0.05}],
            }
        }
    }
    data["health"] = {"watches": [watch("production", ["error_rate > 0.05 for 1s -> P0"])]}
    config: OpsConfig = parse_config(data, "test")
    # The tick is driven by hand: the queue only records the successor it schedules.
    app = Bot(emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=config, jobs=FakeJobs())
    app.services.health.watches.tick(Actor("opsbot", source="job"), {"service": "api", "environment": "production"})
    seen = app.command("health watches").seen()
    assert "`error_rate > 0.05 for 1s -> P0`: unknown (" in seen and reason in seen, seen
    assert "Traceback" not in seen and not emulator.in_channel(ALERTS)


def test_a_watch_of_metric_rules_only_needs_no_health_endpoint(
    metrics_stack: Metrics, emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str
) -> None:
    """A service with metrics but no HTTP health checks (a queue consumer, a batch job) can be watched by its rules."""
    data = config_data(prometheus={"url": metrics_stack.prometheus.url, "timeout_ms": 2000})
    data["services"]["api"] = {
        "environments": {"production": {"metrics": [{"name": "error_rate", "query": "vector(0.2)", "critical": 0.05}]}}
    }
    data["health"] = {"watches": [watch("production", ["error_rate > 0.05 for 1s -> P0"])]}
    config: OpsConfig = parse_config(data, "test")
    app = Bot(emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=config, jobs=FakeJobs())
    tick = {"service": "api", "environment": "production"}
    app.services.health.watches.tick(Actor("opsbot", source="job"), tick)
    time.sleep(1.1)
    app.services.health.watches.tick(Actor("opsbot", source="job"), tick)
    [fired] = app.emulator.wait_for(lambda: alerts(app.emulator, "🔴 api production: error_rate"), timeout=10)
    assert "20" in fired.seen()  # the value read: 20 %
    assert "firing" in app.command("health watches").seen()
