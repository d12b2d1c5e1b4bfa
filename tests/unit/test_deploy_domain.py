"""Deploy domain pieces with fakes: parsing, verification over the watch window, change links, the heartbeat."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bot.config import OpsConfig, parse_config
from bot.domain.deploys import requests as deploys
from bot.domain.deploys import rollbacks, verification
from bot.domain.deploys.execution import Heartbeat
from bot.domain.deploys.model import Deploy, DeployKind, DeployState, StopSignal
from bot.domain.deploys.planning import change_link
from bot.domain.health.model import CheckOutcome, HealthReport
from bot.domain.shared.commands import Args, Subcommand, split_args
from bot.domain.shared.errors import UsageError
from tests.fakes import FakeDatabase, FakeLocks, fake_world
from tests.support import FrozenClock, config_data, make_config


def args(spec: Subcommand[Any], text: str) -> Args:
    return split_args(spec, text.split())


COMMANDS = {spec.name: spec for spec in fake_world().families.deploys.family().commands}
DEPLOY = COMMANDS["deploy"]
ROLLBACK = COMMANDS["rollback"]


def test_deploy_parses_version_service_environment_and_flags() -> None:
    given = split_args(DEPLOY, ["v1.2.3", "api", "to", "production", "--reason", "r 1", "--hotfix", "--dry-run"])
    assert deploys.parse(given) == deploys.StartDeploy("v1.2.3", "api", "production", "r 1", True)
    assert "dry-run" in given.flags  # the dispatcher runs the preview instead (tests/e2e/test_dry_run.py)
    assert deploys.parse(args(DEPLOY, "v1.2.3 to staging")) == deploys.StartDeploy("v1.2.3", None, "staging", "", False)
    assert deploys.parse(args(DEPLOY, "v1.2.3")).environment is None


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "Name the version to deploy."),
        ("v1 api extra to production", "Unexpected argument: `extra`."),
        ("v1 to production api", "`to` takes one word and comes last."),
        ("v1 to production --hotfix", "A hotfix needs a reason"),
    ],
)
def test_deploy_usage_errors_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(UsageError) as raised:
        deploys.parse(args(DEPLOY, text))
    assert message in raised.value.message


def test_rollback_parses_and_needs_a_reason() -> None:
    parsed = rollbacks.parse(split_args(ROLLBACK, ["api", "production", "to", "v1.2.2", "--reason", "x"]))
    assert parsed == rollbacks.StartRollback("api", "production", "v1.2.2", "x")
    with pytest.raises(UsageError, match="Say why"):
        rollbacks.parse(args(ROLLBACK, "api production"))


def test_change_link_fills_the_pattern_and_is_left_out_without_a_previous_version() -> None:
    spec = (
        make_config()
        .services["api"]
        .model_copy(update={"change_url": "https://git.example/{service}/compare/{previous}...{version}"})
    )
    assert change_link(spec, "api", "production", "v1.2.3", "v1.2.2") == "https://git.example/api/compare/v1.2.2...v1.2.3"
    assert change_link(spec, "api", "production", "v1.2.3", None) is None


class ScriptedHealth:
    def __init__(self, *reports: HealthReport) -> None:
        self.reports = list(reports)
        self.calls = 0

    def check(self, service: str, environment: str) -> HealthReport:
        self.calls += 1
        return self.reports[min(self.calls, len(self.reports)) - 1]


def report(status: str = "healthy", version: str | None = "v1.2.3", checks: list[CheckOutcome] | None = None) -> HealthReport:
    return HealthReport("api", "production", status, checks or [], version)  # type: ignore[arg-type]


def watch_config(*, version_url: bool = True, health_checks: bool = True) -> OpsConfig:
    data = config_data()
    target: dict[str, Any] = {}
    if health_checks:
        target["health"] = [{"url": "http://svc.test/health"}]
    if version_url:
        target["version_url"] = "http://svc.test/version"
    data["services"]["api"] = {"environments": {"production": target}}
    data["deploys"] = {"watch_seconds": 60, "check_every_seconds": 20}
    return parse_config(data)


def advancing(clock: FrozenClock) -> Any:
    return lambda seconds: clock.advance(seconds=seconds)


def test_verification_checks_across_the_whole_watch_window() -> None:
    clock, health = FrozenClock(), ScriptedHealth(report())
    verdict = verification.watch(watch_config(), clock, health, "api", "production", "v1.2.3", sleep=advancing(clock))
    assert verdict.ok and verdict.checks == 4 and health.calls == 4
    assert verdict.summary == "4 checks over 1m passed, reporting v1.2.3"


def test_verification_fails_on_the_first_failed_check_with_its_reason() -> None:
    clock = FrozenClock()
    failing = report("failed", checks=[CheckOutcome("db", "http://svc.test/db", "failed", reason="HTTP 503")])
    health = ScriptedHealth(report(), failing, report())
    verdict = verification.watch(watch_config(), clock, health, "api", "production", "v1.2.3", sleep=advancing(clock))
    assert not verdict.ok and verdict.summary == "health check db failed: HTTP 503" and health.calls == 2


def test_verification_fails_when_the_service_reports_another_version() -> None:
    clock = FrozenClock()
    verdict = verification.watch(
        watch_config(), clock, ScriptedHealth(report(version="1.2.2")), "api", "production", "v1.2.3", sleep=advancing(clock)
    )
    assert not verdict.ok and verdict.summary == "the version endpoint reports 1.2.2, not v1.2.3"


def test_a_leading_v_does_not_make_versions_differ_and_slow_checks_are_noted() -> None:
    clock = FrozenClock()
    slow = report(version="1.2.3", checks=[CheckOutcome("db", "u", "degraded", latency_ms=900)])
    verdict = verification.watch(
        watch_config(), clock, ScriptedHealth(slow), "api", "production", "v1.2.3", sleep=advancing(clock)
    )
    assert verdict.ok and verdict.summary.endswith("(slow: db)")


def test_without_checks_the_deploy_is_not_verified_and_says_so() -> None:
    clock = FrozenClock()
    bare_config = watch_config(version_url=False, health_checks=False)
    bare = verification.watch(bare_config, clock, ScriptedHealth(report()), "api", "production", "v1")
    assert bare.ok and not bare.verified and "no health checks or version endpoint are configured" in bare.summary


def test_a_standing_clock_cannot_make_the_watch_loop_forever() -> None:
    clock, health = FrozenClock(), ScriptedHealth(report())
    verdict = verification.watch(watch_config(), clock, health, "api", "production", "v1.2.3", sleep=lambda s: None)
    assert verdict.ok and health.calls == 4


class BeatingDeploys:
    """The deploy repository as the heartbeat uses it: each beat is recorded; the row says running."""

    def __init__(self, deploy: Deploy) -> None:
        self.deploy, self.beats = deploy, 0

    def beat(self, deploy_id: str, at: object) -> Deploy | None:
        self.beats += 1
        return self.deploy


def test_the_heartbeat_renews_the_lease_records_itself_and_stops_the_run_when_the_lock_is_broken() -> None:
    clock = FrozenClock()
    locks = FakeLocks(clock)
    lease = locks.acquire("deploy/api/production", holder="U0DEV", purpose="deploy", ttl_seconds=3)
    assert lease is not None
    deploy = Deploy(
        "d-00000001",
        DeployKind.DEPLOY,
        "api",
        "production",
        "v1",
        "U0DEV",
        "r",
        DeployState.RUNNING,
        clock.now(),
        lock_name=lease.name,
        lock_token=lease.token,
        lock_fence=lease.fence,
    )
    db = FakeDatabase()
    db.repositories["deploys"] = rows = BeatingDeploys(deploy)
    config = make_config(deploys={"lock_ttl_seconds": 3}, durability={"heartbeat_seconds": 0.1, "stale_after_seconds": 1})
    deps = fake_world(config, clock, db=db, locks=locks).families.deploys.deps
    stop = StopSignal()
    with Heartbeat(deps, deploy, lease, stop) as beat:
        time.sleep(0.35)
        assert locks.is_current(lease) and not beat.lost and rows.beats >= 2
        locks.force_release("deploy/api/production")
        assert stop.wait(2)
    assert beat.lost and stop.reason == "its deploy lock was broken or ran out"
