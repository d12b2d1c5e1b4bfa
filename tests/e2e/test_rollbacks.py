"""Rollbacks through signed Slack requests: the Rollback button, the default target, the rollback policy."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from bot.config import OpsConfig
from bot.console.slack_emulator import SlackEmulator
from tests.deploy_kit import (  # noqa: F401 - fixtures
    RecordedEvents,
    ServiceDouble,
    deploy_config,
    deployed_log,
    services_double,
    state_dir,
)
from tests.e2e.test_deploys import approval_for, posted
from tests.support import Bot, with_button_value


@pytest.fixture
def config(state_dir: Path, services_double: ServiceDouble) -> OpsConfig:
    return deploy_config(state_dir, services_double.base_url, production={"lock_after_rollback": False})


@pytest.fixture
def app(emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str, config: OpsConfig) -> Bot:
    return Bot(
        emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=config, events=RecordedEvents()
    )


def deploy_to_production(app: Bot, version: str, expect: str = "completed") -> None:
    app.command(f'deploy {version} to production --reason "release {version}"', user="U0DEV")
    request = approval_for(app, f"Deploy {version} of api to production")
    app.click(request, "Approve", "U0APPROVER1")
    app.click(request, "Approve", "U0APPROVER2")
    posted(app, f"Deployment of {version} to production {expect}")
    app.services.local_worker.wait_idle()  # type: ignore[attr-defined]


def test_failed_verification_offers_a_rollback_button_that_goes_back_to_the_last_good_version(
    app: Bot, services_double: ServiceDouble, state_dir: Path
) -> None:
    deploy_to_production(app, "v1.2.2")
    services_double.unhealthy.add("api/production")
    deploy_to_production(app, "v1.2.3", expect="failed verification")
    failed = posted(app, "❌ Deployment of v1.2.3 to production failed verification")
    assert "health check http failed: status 503 (expected 200)" in failed.seen()
    assert app.services.adapters.events.kinds()[-1] == "deploy.failed"  # type: ignore[attr-defined]
    assert "No locks are held" in app.command("locks").seen()

    services_double.unhealthy.clear()
    reply = app.click(failed, "Rollback", "U0DEV2")
    assert "Roll back api to v1.2.2 in production" in reply[-1]["text"] and "waiting for 1 approval" in reply[-1]["text"]
    request = approval_for(app, "Roll back api to v1.2.2 in production")
    assert "v1.2.3 failed in production" in request.seen()
    app.click(request, "Approve", "U0APPROVER1")

    done = posted(app, "⚠️ Rolled back api to v1.2.2 in production due to v1.2.3 failed in production")
    assert "reporting v1.2.2" in done.seen()
    assert (state_dir / "api-production.version").read_text() == "v1.2.2"
    history = app.command("history api production").seen()
    assert "rolled back" in history and history.index("v1.2.2") < history.index("v1.2.3")
    assert app.services.adapters.events.kinds()[-1] == "rollback.done"  # type: ignore[attr-defined]
    assert ("U0DEV2", "click.deploy_rollback", "requested") in app.audit_actions()
    assert ("opsbot", "deploy.rolled_back", "rolled_back") in app.audit_actions()


def test_rollback_command_defaults_to_the_version_before_the_current_one(app: Bot) -> None:
    deploy_to_production(app, "v1.2.2")
    deploy_to_production(app, "v1.2.3")
    reply = app.command('rollback api production --reason "error rate up"', user="U0DEV2")
    assert "Roll back api to v1.2.2 in production" in reply.seen()
    request = approval_for(app, "Roll back api to v1.2.2 in production")
    app.click(request, "Approve", "U0APPROVER3")
    posted(app, "⚠️ Rolled back api to v1.2.2 in production due to error rate up")


def test_rollback_with_nothing_earlier_says_so_and_asks_for_a_version(app: Bot) -> None:
    nothing = app.command('rollback api production --reason "x"').seen()
    assert "Nothing has been deployed to `api` in production through opsbot yet" in nothing
    deploy_to_production(app, "v1.2.2")
    only_one = app.command('rollback api production --reason "x"').seen()
    assert "There is no version of `api` before v1.2.2 that deployed and verified successfully" in only_one
    assert "to <version>" in only_one
    assert app.services.adapters.locks.held() == []


def test_rollback_to_a_named_version_and_a_reason_is_required(app: Bot) -> None:
    assert "Say why with `--reason" in app.command("rollback api production to v1.0.0").seen()
    assert "not a valid version" in app.command("rollback api production to 1.0 --reason x").seen()
    reply = app.command('rollback api production to v1.0.0 --reason "known good"').seen()
    assert "Roll back api to v1.0.0 in production" in reply


def test_provider_failure_is_announced_with_its_output_and_releases_the_lock(app: Bot, state_dir: Path) -> None:
    (state_dir / "next-exit").write_text("3")
    app.command("deploy v2.0.0 to staging")
    failed = posted(app, "❌ Deployment of v2.0.0 to staging failed")
    seen = failed.seen()
    assert "exited with status 3" in seen and "error: rollout of v2.0.0 failed" in seen
    assert "failed verification" not in seen
    assert "No locks are held" in app.command("locks").seen()
    assert app.reads.deploys.history("api", "staging", 1)[0].state.value == "failed"  # type: ignore[union-attr]
    assert ("opsbot", "deploy.provider_result", "failed") in app.audit_actions()


class TestLockAfterRollback:
    @pytest.fixture
    def config(self, state_dir: Path, services_double: ServiceDouble) -> OpsConfig:
        return deploy_config(state_dir, services_double.base_url, production={"lock_after_rollback": True})

    def test_deploys_stay_locked_after_a_rollback_until_someone_unlocks(self, app: Bot) -> None:
        deploy_to_production(app, "v1.2.2")
        deploy_to_production(app, "v1.2.3")
        app.command('rollback api production --reason "broken"', user="U0DEV")
        app.click(approval_for(app, "Roll back api to v1.2.2 in production"), "Approve", "U0APPROVER1")
        done = posted(app, "Rolled back api to v1.2.2")
        assert "stay locked until someone runs" in done.seen()
        refused = app.command("deploy v1.2.4 to production", user="U0DEV2").seen()
        assert "locked after the rollback to v1.2.2" in refused
        app.command('unlock api production --reason "fixed"', user="U0ADMIN")
        assert "waiting for 2 approvals" in app.command("deploy v1.2.4 to production", user="U0DEV2").seen()


def test_a_rollback_click_naming_a_deploy_that_did_not_fail_is_refused(app: Bot, services_double: ServiceDouble) -> None:
    deploy_to_production(app, "v1.0.1")
    services_double.unhealthy.add("api/production")
    deploy_to_production(app, "v1.0.2", expect="failed verification")
    failed = posted(app, "❌ Deployment of v1.0.2 to production failed verification")
    services_double.unhealthy.clear()
    deploy_to_production(app, "v1.0.3")
    good = next(d for d in app.reads.deploys.history("api", "production", 5) if d.version == "v1.0.3")  # type: ignore[union-attr]
    forged = with_button_value(failed, "Rollback", good.id)  # a crafted click: the button names the succeeded deploy

    answer = app.click(forged, "Rollback", "U0DEV2")[-1]["text"]

    assert f"`{good.id}` (deploy of v1.0.3 to production) did not fail: it is succeeded." in answer
    assert "Roll back" not in answer and "v1.0.2 failed" not in answer
    assert not [m for m in app.emulator.in_channel("C0DEPLOYS") if "Approval needed: Roll back" in m.seen()]
    assert ("U0DEV2", "click.deploy_rollback", "denied") in app.audit_actions()


def test_a_first_deploy_that_fails_offers_no_rollback(app: Bot, services_double: ServiceDouble) -> None:
    services_double.unhealthy.add("api/production")
    deploy_to_production(app, "v1.0.0", expect="failed verification")
    failed = posted(app, "❌ Deployment of v1.0.0 to production failed verification")
    assert [b["text"]["text"] for b in failed.buttons()] == []  # nothing earlier to go back to
