"""The App Home tab through signed Slack requests (issue 13 §1): `app_home_opened` publishes one view; Approve on Home
is a vote checked like one in the channel and counted once; Home refreshes when what it shows changes; Redis or
Slack away degrade clearly."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
import redis

from bot.adapters.redis.connection import connect
from bot.config import OpsConfig, parse_config
from bot.console import payloads
from bot.console.slack_emulator import Posted, SlackEmulator
from bot.slack_limits import BLOCKS_PER_MODAL_OR_HOME
from tests.deploy_kit import ServiceDouble, deploy_config_data, services_double, state_dir  # noqa: F401 - fixtures
from tests.e2e.test_deploys import approval_for, posted
from tests.support import Bot, eventually

TITLE = "Deploy v1.2.3 of api to production"


@pytest.fixture
def config(state_dir: Path, services_double: ServiceDouble) -> OpsConfig:
    return parse_config(deploy_config_data(state_dir, services_double.base_url), "test")


@pytest.fixture
def app(emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str, config: OpsConfig) -> Bot:
    return Bot(emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=config)


def publishes(app: Bot, user: str) -> list[dict[str, Any]]:
    """Every view published for ``user``, oldest first."""
    return [c.args["view"] for c in app.emulator.calls_to("views.publish") if c.args.get("user_id") == user]


def open_home(app: Bot, user: str, tab: str = "home") -> int:
    """Slack's signed `app_home_opened` through Bolt's dispatch; the answer's HTTP status."""
    event = payloads.app_home_opened(user_id=user, view=app.emulator.homes.get(user), tab=tab)
    body = payloads.event_callback(event, event_id="Ev" + secrets.token_hex(5).upper())
    return app.dispatch(body, payloads.sign(app.secret, body, content_type="application/json")).status


def home_after(app: Bot, user: str, count: int, timeout: float = 15.0) -> Posted:
    """``user``'s Home once it has been published ``count`` times in all, as something to read and click."""
    eventually(lambda: len(publishes(app, user)) >= count, timeout)
    return Posted("", "", "", list(app.emulator.homes[user]["blocks"]))


def click_home(app: Bot, user: str, label: str) -> Posted:
    """Press ``label`` on ``user``'s Home (a view: no channel, no message, no response URL); their Home after it."""
    before = len(publishes(app, user))
    home = Posted("", "", "", list(app.emulator.homes[user]["blocks"]))
    button = next(b for b in home.buttons() if b["text"]["text"] == label)
    body = payloads.home_block_action(user_id=user, view=app.emulator.homes[user], action=button)
    assert app.dispatch(body).status == 200
    return home_after(app, user, before + 1)


@pytest.fixture
def incident_and_request(app: Bot) -> Posted:
    """An open P1 incident of `api` and a production deploy waiting for its two approvals."""
    app.command("incident declare P1 checkout is down --service api", user="U0DEV", timeout=15)
    app.command('deploy v1.2.3 to production --reason "release 42"', user="U0DEV")
    return approval_for(app, TITLE)


def test_opening_home_publishes_one_view_with_the_incident_and_approve_only_for_an_approver(
    app: Bot, incident_and_request: Posted
) -> None:
    assert open_home(app, "U0APPROVER1") == 200
    approver = home_after(app, "U0APPROVER1", 1)
    seen = approver.seen()
    assert "INC-1 · P1" in seen and "checkout is down" in seen and "commander @U0DEV" in seen
    assert TITLE in seen and "Requested by @U0DEV" in seen and "approvals: 0 of 2" in seen
    assert [b["text"]["text"] for b in approver.buttons()] == ["Approve", "Reject"]
    assert approver.buttons()[0]["value"] == incident_and_request.buttons()[0]["value"]  # the same opaque request id
    assert "deploy/api/production" in seen and "held by @U0DEV" in seen

    assert open_home(app, "U0VIEWER") == 200
    viewer = home_after(app, "U0VIEWER", 1)
    assert TITLE in viewer.seen() and "INC-1" in viewer.seen()
    assert viewer.buttons() == []  # a viewer sees the request, with nothing to press

    assert len(app.emulator.calls_to("views.publish")) == 2  # one per open
    view = app.emulator.homes["U0APPROVER1"]
    assert view["type"] == "home" and len(view["blocks"]) <= BLOCKS_PER_MODAL_OR_HOME


def test_opening_the_messages_tab_publishes_nothing(app: Bot) -> None:
    assert open_home(app, "U0APPROVER1", tab="messages") == 200
    assert open_home(app, "U0APPROVER1") == 200
    home_after(app, "U0APPROVER1", 1)
    assert len(publishes(app, "U0APPROVER1")) == 1


def test_an_approval_from_home_counts_once_and_is_answered_on_home(app: Bot, incident_and_request: Posted) -> None:
    open_home(app, "U0APPROVER1")
    home_after(app, "U0APPROVER1", 1)

    after = click_home(app, "U0APPROVER1", "Approve")
    assert "✅ You approved Deploy v1.2.3 of api to production: 1 of 2." in after.seen()
    assert "You approved this request." in after.seen() and after.buttons() == []
    in_channel = app.emulator.find(incident_and_request.ts)
    assert in_channel is not None and "1 of 2" in in_channel.seen() and "Approved by @U0APPROVER1" in in_channel.seen()

    # The same click again (a stale Home, a double click): refused by the server, answered on Home, not counted.
    body = payloads.home_block_action(
        user_id="U0APPROVER1", view=app.emulator.homes["U0APPROVER1"], action=incident_and_request.buttons()[0]
    )
    before = len(publishes(app, "U0APPROVER1"))
    assert app.dispatch(body).status == 200
    again = home_after(app, "U0APPROVER1", before + 1)
    assert "🔒 You already approved this request; each approver counts once." in again.seen()
    assert "1 of 2" in app.emulator.find(incident_and_request.ts).seen()  # type: ignore[union-attr]
    votes = [(actor, outcome) for actor, action, outcome in app.audit_actions() if action == "click.approve"]
    assert votes == [("U0APPROVER1", "approved"), ("U0APPROVER1", "conflict")]
    assert app.emulator.calls_to("chat.postEphemeral") == []  # no channel to answer in: Home answered


def test_a_viewer_pressing_a_forged_approve_on_home_is_refused_by_the_server(app: Bot, incident_and_request: Posted) -> None:
    open_home(app, "U0VIEWER")
    home_after(app, "U0VIEWER", 1)
    body = payloads.home_block_action(
        user_id="U0VIEWER", view=app.emulator.homes["U0VIEWER"], action=incident_and_request.buttons()[0]
    )
    assert app.dispatch(body).status == 200
    answer = home_after(app, "U0VIEWER", 2)
    assert "needs the *approver* role" in answer.seen()
    assert "0 of 2" in app.emulator.find(incident_and_request.ts).seen()  # type: ignore[union-attr]


def test_changes_within_ten_seconds_of_a_publish_refresh_home_once_when_the_window_closes(app: Bot) -> None:
    open_home(app, "U0APPROVER2")
    assert TITLE not in home_after(app, "U0APPROVER2", 1).seen()
    app.command("deploy v1.2.3 to production", user="U0DEV")  # two changes inside the 10 s after the open
    app.command('lock web staging --reason "db maintenance"', user="U0DEV")
    refreshed = home_after(app, "U0APPROVER2", 2).seen()  # the trailing refresh, once the window closed
    assert TITLE in refreshed and "deploy/web/staging" in refreshed and "db maintenance" in refreshed
    assert len(publishes(app, "U0APPROVER2")) == 2  # one publish for both changes
    first, second = [c.at for c in app.emulator.calls_to("views.publish")]
    assert second - first >= 10  # Slack saw at most one publish per 10 s for this person


def test_when_slack_takes_no_view_the_clicker_is_answered_by_dm(app: Bot, incident_and_request: Posted) -> None:
    open_home(app, "U0APPROVER1")
    home = home_after(app, "U0APPROVER1", 1)
    app.emulator.fail("views.publish", "not_enabled", times=5)
    button = next(b for b in home.buttons() if b["text"]["text"] == "Approve")
    body = payloads.home_block_action(user_id="U0APPROVER1", view=app.emulator.homes["U0APPROVER1"], action=button)
    assert app.dispatch(body).status == 200
    dm = app.emulator.wait_for(lambda: next((m for m in app.emulator.in_channel("D0APPROVER1")), None))
    assert "You approved *Deploy v1.2.3 of api to production*: 1 of 2." in dm.seen()
    assert "1 of 2" in app.emulator.find(incident_and_request.ts).seen()  # type: ignore[union-attr]


def test_with_redis_away_home_still_opens_and_says_what_it_cannot_show(
    emulator: SlackEmulator, pg_url: str, redis_prefix: str, config: OpsConfig
) -> None:
    gone = connect("redis://127.0.0.1:1/0")  # nothing listens on port 1
    app = Bot(emulator=emulator, db_url=pg_url, redis_client=gone, prefix=redis_prefix, config=config)
    app.command("incident declare P2 search is slow --service api", user="U0DEV")
    assert open_home(app, "U0VIEWER") == 200
    seen = home_after(app, "U0VIEWER", 1).seen()
    assert "INC-1 · P2" in seen  # what the database knows is shown
    assert "Not shown right now: Deploy locks: Redis is unreachable right now" in seen
    assert "will not refresh by itself right now (Redis is unreachable)" in seen


def test_the_last_approval_given_on_home_starts_the_deploy_like_one_in_the_channel(
    app: Bot, incident_and_request: Posted
) -> None:
    for approver in ("U0APPROVER2", "U0APPROVER3"):
        open_home(app, approver)
        home_after(app, approver, 1)
        click_home(app, approver, "Approve")
    last = app.emulator.homes["U0APPROVER3"]
    assert "That was the last approval needed." in Posted("", "", "", last["blocks"]).seen()
    posted(app, "✅ Deployment of v1.2.3 to production completed", 20)
    started = posted(app, "🚀 Starting deployment of v1.2.3 to production")
    assert "@U0APPROVER2" in started.seen() and "@U0APPROVER3" in started.seen()
    assert "2 of 2" in app.emulator.find(incident_and_request.ts).seen()  # type: ignore[union-attr]


def test_a_home_button_carrying_anything_but_a_request_id_is_answered_on_home(app: Bot) -> None:
    open_home(app, "U0APPROVER1")
    home_after(app, "U0APPROVER1", 1)
    forged = {"action_id": "approval_approve", "block_id": "x", "value": '<!channel> "; DROP TABLE approvals; --\x00'}
    body = payloads.home_block_action(user_id="U0APPROVER1", view=app.emulator.homes["U0APPROVER1"], action=forged)
    assert app.dispatch(body).status == 200
    answer = home_after(app, "U0APPROVER1", 2)
    assert "🔎 Unknown approval request" in answer.seen() and "Something went wrong" not in answer.seen()
    assert ("U0APPROVER1", "click.approve", "not_found") in app.audit_actions()
