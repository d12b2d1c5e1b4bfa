"""Authority is checked when it is used: fresh group membership for votes, a vote only on its own request's
message, and `/ops help` that survives a user group Slack will not show (issue "What users type and read", §2-3)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import redis

from bot.adapters.slack.web_api import SlackGroups, make_web_client
from bot.config import OpsConfig, parse_config
from bot.console import payloads
from bot.console.slack_emulator import SlackEmulator
from tests.deploy_kit import ServiceDouble, deploy_config_data, deployed_log, services_double, state_dir  # noqa: F401 - fixtures
from tests.e2e.test_deploys import approval_for
from tests.support import Bot, with_button_value


@pytest.fixture
def config(state_dir: Path, services_double: ServiceDouble) -> OpsConfig:
    data = deploy_config_data(state_dir, services_double.base_url)
    data["environments"]["staging"]["approvals"] = 1  # two requests open at once, one per environment
    return parse_config(data, "test")


@pytest.fixture
def app(emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str, config: OpsConfig) -> Bot:
    return Bot(emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=config)


def members_changed(app: Bot, group: str, removed: list[str]) -> None:
    """Slack's `subteam_members_changed` event, signed, through Bolt's dispatch."""
    event = {
        "type": "subteam_members_changed",
        "subteam_id": group,
        "team_id": "T0LOCAL",
        "date_previous_update": 1446670362,
        "date_update": 1492906952,
        "added_users": [],
        "added_users_count": "0",
        "removed_users": removed,
        "removed_users_count": str(len(removed)),
    }
    body = payloads.event_callback(event, event_id="Ev" + secrets.token_hex(5).upper())
    response = app.dispatch(body, payloads.sign(app.secret, body, content_type="application/json"))
    assert response.status == 200


def test_an_approver_removed_from_the_group_cannot_approve_once_slack_says_so(app: Bot) -> None:
    app.command("deploy v1.2.3 to production", user="U0DEV")
    request = approval_for(app, "Deploy v1.2.3 of api to production")
    app.click(request, "Approve", "U0APPROVER1")  # reads S0SRE: both approvers are in it
    reads = len(app.emulator.calls_to("usergroups.users.list"))

    app.emulator.add_usergroup("S0SRE", ["U0APPROVER1"])  # U0APPROVER2 leaves the SRE group
    members_changed(app, "S0SRE", removed=["U0APPROVER2"])
    answer = app.click(request, "Approve", "U0APPROVER2")[-1]["text"]

    assert "needs the *approver* role" in answer
    assert len(app.emulator.calls_to("usergroups.users.list")) > reads  # read again, not taken from the cache
    assert "1 of 2" in app.emulator.find(request.ts).seen()
    assert ("U0APPROVER2", "click.approve", "denied") in app.audit_actions()


def test_a_vote_rereads_a_group_known_for_more_than_ten_seconds(emulator: SlackEmulator) -> None:
    now = [1000.0]
    groups = SlackGroups(make_web_client(emulator.token, emulator.api_url), monotonic=lambda: now[0])
    assert "U0APPROVER2" in groups.members("S0SRE")
    emulator.add_usergroup("S0SRE", ["U0APPROVER1"])
    now[0] += 9
    assert "U0APPROVER2" in groups.members("S0SRE", 10)  # known for 9 s: a vote may use it
    now[0] += 2
    assert "U0APPROVER2" in groups.members("S0SRE")  # 11 s: a role check for a read still may (cache 60 s)
    assert "U0APPROVER2" not in groups.members("S0SRE", 10)  # a vote may not: read again
    assert len(emulator.calls_to("usergroups.users.list")) == 2


def test_a_click_counts_only_on_the_request_whose_message_carried_the_button(app: Bot, state_dir: Path) -> None:
    app.command("deploy v1.2.3 to production", user="U0DEV")
    first = approval_for(app, "Deploy v1.2.3 of api to production")
    app.command("deploy v1.2.4 to staging", user="U0DEV")
    second = approval_for(app, "Deploy v1.2.4 of api to staging")
    second_id = next(b["value"] for b in second.buttons() if b["text"]["text"] == "Approve")

    answer = app.click(with_button_value(first, "Approve", second_id), "Approve", "U0APPROVER1")[-1]["text"]

    assert "That button is not on the request *Deploy v1.2.4 of api to staging*; it was not counted." in answer
    assert "0 of 1" in app.emulator.find(second.ts).seen() and "0 of 2" in app.emulator.find(first.ts).seen()
    assert ("U0APPROVER1", "click.approve", "denied") in app.audit_actions()
    app.click(first, "Approve", "U0APPROVER1")  # the real buttons still work
    assert "1 of 2" in app.emulator.find(first.ts).seen()


def test_help_answers_with_what_it_knows_when_a_user_group_cannot_be_read(app: Bot) -> None:
    app.emulator.fail("usergroups.users.list", "missing_scope", times=5)
    reply = app.command("help", user="U0APPROVER3").seen()  # an approver listed by ID; S0SRE also grants deployer
    assert "opsbot help" in reply and "Your roles: approver, viewer" in reply
    assert "Slack would not show some user groups, so you may hold more roles than listed: S0SRE:" in reply
    assert "missing_scope" in reply
