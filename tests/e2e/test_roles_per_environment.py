"""Roles per environment (`environments.<env>.roles`): applied to deploys, rollbacks, locks, flag changes, freezes and
approvals of that environment; `/ops help` says where a user's standing differs."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from bot.config import OpsConfig, parse_config
from bot.console.slack_emulator import Posted, SlackEmulator
from tests.deploy_kit import ServiceDouble, deploy_config_data, services_double, state_dir  # noqa: F401 - fixtures
from tests.flagkit import create_flag_table, flag_row
from tests.support import Bot

DEPLOYS = "C0DEPLOYS"


@pytest.fixture
def config(state_dir: Path, services_double: ServiceDouble, app_db_url: str) -> OpsConfig:
    data = deploy_config_data(state_dir, services_double.base_url)
    # Production narrows deployers to the SRE group and approvers to one person; staging widens deployers to an intern.
    data["environments"]["production"]["roles"] = {"deployer": ["S0SRE"], "approver": ["U0APPROVER3"]}
    data["environments"]["staging"]["roles"] = {"deployer": ["U0DEV", "U0INTERN", "S0SRE"]}
    create_flag_table(app_db_url, {"checkout.new-flow": (True, False, 30)})
    data["flags"] = {
        "default_environment": "production",
        "provider": {"type": "sql", "databases": {"production": {"url": app_db_url}}},
    }
    return parse_config(data, "test")


@pytest.fixture
def app(emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str, config: OpsConfig) -> Bot:
    return Bot(emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=config)


def request_for(app: Bot, title: str) -> Posted:
    return app.emulator.wait_for(
        lambda: next((m for m in app.emulator.in_channel(DEPLOYS) if f"Approval needed: {title}" in m.seen()), None)
    )


def test_a_global_deployer_is_refused_where_the_environment_narrows_the_role(app: Bot) -> None:
    for text in (
        'deploy v1.2.3 api to production --reason "r"',
        'rollback api production to v1.2.2 --reason "r"',
        'lock api production --reason "r"',
        'flag kill checkout.new-flow --reason "r"',
    ):
        reply = app.command(text, user="U0DEV").seen()
        assert "needs the *deployer* role in production." in reply, (text, reply)
    # The intent is recorded before the environment is known ("started"), then the denial.
    assert [outcome for actor, _, outcome in app.audit_actions() if actor == "U0DEV"] == ["started", "denied"] * 4
    assert app.services.adapters.locks.held() == []
    assert flag_row(str(app.config.flags.provider.databases["production"].url), "checkout.new-flow") == (True, False, 30)  # type: ignore[union-attr]


def test_an_environment_can_widen_a_role_to_someone_with_no_global_role(app: Bot) -> None:
    reply = app.command("deploy v1.2.3 api to staging", user="U0INTERN").seen()
    assert "needs the" not in reply
    assert (
        "✅ Deployment of v1.2.3 to staging completed"
        in app.emulator.wait_for(
            lambda: next((m for m in app.emulator.in_channel(DEPLOYS) if "completed" in m.seen()), None), 15
        ).seen()
    )
    assert "needs the *deployer* role in production." in app.command("deploy v1.2.3 api to production", user="U0INTERN").seen()
    help_text = app.command("help", user="U0INTERN").seen()
    assert "/ops deploy" in help_text and "Per environment: deployer: only in staging" in help_text
    assert "Per environment: deployer: not in production" in app.command("help", user="U0DEV").seen()


def test_only_the_environments_own_approvers_count_on_its_requests(app: Bot) -> None:
    app.command('deploy v1.2.3 api to production --reason "release"', user="U0APPROVER1")
    request = request_for(app, "Deploy v1.2.3 of api to production")
    refused = app.click(request, "Approve", "U0APPROVER2")  # in S0SRE, a global approver, not one in production
    assert "needs the *approver* role in production" in refused[-1]["text"]
    assert "0 of 2" in app.emulator.find(request.ts).seen()
    dry = app.command('deploy v1.2.3 api to production --reason "r" --dry-run', user="U0APPROVER1").seen()
    assert "@U0APPROVER3" in dry and "@S0SRE" not in dry.split("Who may approve")[1].split("Lock")[0]


def test_a_global_approver_still_freezes_where_the_environment_sets_no_approvers(app: Bot) -> None:
    assert (
        "needs the *approver* role in production" in app.command('freeze production 1h --reason "x"', user="U0APPROVER1").seen()
    )
    frozen = app.command('freeze staging 1h --reason "load test"', user="U0APPROVER1").seen()
    assert "load test" in frozen and "needs the" not in frozen
