"""Freezes: configured windows and `/ops freeze`; `--hotfix` adds an admin's approval; admins may self-approve only then."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from bot.config import OpsConfig
from bot.console.slack_emulator import SlackEmulator
from tests.deploy_kit import ServiceDouble, deploy_config, services_double, state_dir  # noqa: F401 - fixtures
from tests.e2e.test_deploy_faults import make_app
from tests.e2e.test_deploys import approval_for, posted
from tests.support import Bot, FrozenClock

SUNDAY_0230 = datetime(2026, 11, 29, 2, 30, tzinfo=UTC)  # inside production's "SUN 02:00-04:00 UTC"


@pytest.fixture
def config(state_dir: Path, services_double: ServiceDouble) -> OpsConfig:
    return deploy_config(state_dir, services_double.base_url)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def app(
    emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str, config: OpsConfig, clock: FrozenClock
) -> Bot:
    return make_app(emulator, pg_url, redis_client, redis_prefix, config, clock=clock)


def test_a_deploy_inside_the_configured_window_is_refused_with_the_way_out(app: Bot, clock: FrozenClock) -> None:
    clock.moment = SUNDAY_0230
    reply = app.command("deploy v1.2.3 to production").seen()
    assert "Deploys of api to production are frozen" in reply and "freeze window SUN 02:00-04:00 UTC" in reply
    assert "until 2026-11-29 04:00 UTC" in reply and "--hotfix" in reply
    assert app.services.adapters.locks.held() == []
    assert ("U0DEV", "command.deploy", "frozen") in app.audit_actions()
    assert "needs no approval in staging" in app.command("deploy v1.2.3 to staging").seen()
    posted(app, "✅ Deployment of v1.2.3 to staging completed")


def test_an_ad_hoc_freeze_refuses_deploys_and_unfreeze_lifts_it(app: Bot) -> None:
    assert "needs the *approver* role" in app.command('freeze production 2h --reason "x"', user="U0DEV").seen()
    app.command('freeze production 2h --reason "black friday"', user="U0APPROVER1")
    announced = posted(app, "Deploys to *production* (environment) are frozen until 2026-11-23 16:00 UTC")
    assert "black friday" in announced.seen() and "@U0APPROVER1" in announced.seen()
    refused = app.command("deploy v1.2.3 to production").seen()
    assert "production until 2026-11-23 16:00 UTC: black friday (set by @U0APPROVER1)" in refused
    assert "black friday" in app.command("freezes", user="U0VIEWER").seen()
    app.command("unfreeze production", user="U0APPROVER2")
    assert "waiting for 2 approvals" in app.command("deploy v1.2.3 to production").seen()
    actions = [(a, o) for _, a, o in app.audit_actions()]
    assert ("freeze.set", "ok") in actions and ("freeze.lifted", "ok") in actions


def test_a_service_freeze_applies_in_every_environment(app: Bot) -> None:
    app.command('freeze api 30m --reason "migration"', user="U0ADMIN")
    assert "frozen" in app.command("deploy v1.2.3 to staging").seen()


def test_bad_freeze_requests_are_refused(app: Bot) -> None:
    assert "Unknown environment or service `prod`" in app.command("freeze prod 1h --reason x", user="U0ADMIN").seen()
    assert "is not a duration" in app.command("freeze production soon --reason x", user="U0ADMIN").seen()
    assert "Say why" in app.command("freeze production 1h", user="U0ADMIN").seen()
    assert "longer than the maximum" in app.command("freeze production 60d --reason x", user="U0ADMIN").seen()
    assert "has no freeze set with `/ops freeze`" in app.command("unfreeze production", user="U0ADMIN").seen()


def test_unfreeze_cannot_lift_a_configured_window(app: Bot, clock: FrozenClock) -> None:
    clock.moment = SUNDAY_0230
    reply = app.command("unfreeze production", user="U0ADMIN").seen()
    assert "configured freeze window cannot be lifted from Slack" in reply


def test_a_hotfix_in_a_freeze_needs_an_admin_on_top_of_two_approvers(app: Bot, clock: FrozenClock) -> None:
    clock.moment = SUNDAY_0230
    reply = app.command('deploy v1.2.4 to production --hotfix --reason "checkout down"').seen()
    assert "and an admin's (hotfix during a freeze)" in reply
    request = approval_for(app, "Deploy v1.2.4 of api to production")
    assert "0 of 3 (one from an admin)" in request.seen() and "HOTFIX during a freeze" in request.seen()
    app.click(request, "Approve", "U0APPROVER1")
    app.click(request, "Approve", "U0APPROVER2")
    app.click(request, "Approve", "U0APPROVER3")
    assert "Approval needed" in app.emulator.find(request.ts).seen()  # three approvers, but none of them an admin
    app.click(request, "Approve", "U0ADMIN")
    posted(app, "✅ Deployment of v1.2.4 to production completed")


def test_an_admin_may_approve_their_own_hotfix_loudly_but_never_an_ordinary_deploy(app: Bot, clock: FrozenClock) -> None:
    app.command("deploy v1.2.3 to production", user="U0ADMIN")
    ordinary = approval_for(app, "Deploy v1.2.3 of api to production")
    assert "two-person rule" in app.click(ordinary, "Approve", "U0ADMIN")[-1]["text"]
    app.command(f"cancel {app.reads.deploys.history(None, None, 1)[0].id}", user="U0ADMIN")  # type: ignore[union-attr]

    clock.moment = SUNDAY_0230
    app.command('deploy v1.2.4 to production --hotfix --reason "checkout down"', user="U0ADMIN")
    hotfix = approval_for(app, "Deploy v1.2.4 of api to production")
    receipt = app.click(hotfix, "Approve", "U0ADMIN")[-1]["text"]
    assert "under the hotfix policy" in receipt
    assert "SELF-APPROVED by an admin under the hotfix policy" in app.emulator.find(hotfix.ts).seen()
    app.click(hotfix, "Approve", "U0APPROVER1")
    app.click(hotfix, "Approve", "U0APPROVER2")
    started = posted(app, "🚀 Starting deployment of v1.2.4 to production")
    assert "@U0ADMIN (self-approved, hotfix)" in started.seen()
    assert "U0ADMIN (self-approved, hotfix)" in app.command("history").seen()


def test_rollbacks_may_run_during_a_freeze(app: Bot, clock: FrozenClock) -> None:
    clock.moment = SUNDAY_0230
    reply = app.command('rollback api production to v1.0.0 --reason "bad release"').seen()
    assert "Roll back api to v1.0.0 in production" in reply
    assert "rollbacks may run during freezes" in approval_for(app, "Roll back api to v1.0.0 in production").seen()
