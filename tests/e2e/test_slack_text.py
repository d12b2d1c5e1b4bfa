"""`/ops` text as Slack sends it (``should_escape``: typed ``&<>`` escaped, markup for links, people and channels;
autocorrected quotes and dashes), through the real app: what the user sees."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from bot.adapters.slack.web_api import SlackPeople, make_web_client
from bot.console import payloads
from bot.console.slack_emulator import SlackEmulator
from bot.domain.shared.errors import AmbiguousName
from tests.e2e.incident_helpers import declare
from tests.flagkit import create_flag_table, flag_row
from tests.support import USERS, Bot, make_config


@pytest.fixture
def flag_bot(emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str, tmp_path: Path) -> Bot:
    urls = {env: f"sqlite:///{tmp_path / f'{env}-app.db'}" for env in ("staging", "production")}
    for url in urls.values():
        create_flag_table(url, {"checkout.new-flow": (True, False, 100), "x.io": (True, False, 100)})
    flags = {
        "default_environment": "production",
        "services": {"checkout.*": "api", "x.*": "api"},
        "provider": {"type": "sql", "databases": {env: {"url": url} for env, url in urls.items()}},
    }
    config = make_config(flags=flags)
    bot = Bot(emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=config)
    bot.flag_urls = urls  # type: ignore[attr-defined]
    return bot


@pytest.mark.parametrize(
    "reason",
    [
        "\u2018500s after deploy\u2019",
        "\u201a500s after deploy\u2018",
        "\u201b500s after deploy\u2019",
        "\u201c500s after deploy\u201d",
    ],
)
def test_a_kill_with_autocorrected_quotes_is_a_kill(flag_bot: Bot, reason: str) -> None:
    reply = flag_bot.command(f"flag kill checkout.new-flow --reason {reason}", user="U0DEV")
    assert "Unexpected argument" not in reply.seen()
    assert "killed checkout.new-flow in production" in reply.seen() and "500s after deploy" in reply.seen()
    assert flag_row(flag_bot.flag_urls["production"], "checkout.new-flow") == (True, True, 100)  # type: ignore[attr-defined,index]


@pytest.mark.parametrize("dash", ["\u2014", "\u2013"])
@pytest.mark.parametrize("apostrophe", ["'", "\u2019"])
def test_an_autocorrected_dash_and_an_apostrophe_in_the_reason_are_read_as_typed(
    flag_bot: Bot, dash: str, apostrophe: str
) -> None:
    reply = flag_bot.command(f"flag kill checkout.new-flow {dash}reason it{apostrophe}s the cache", user="U0DEV")
    assert "no closing quotation" not in reply.seen()
    assert f"it{apostrophe}s the cache" in reply.seen() and "killed *checkout.new-flow*" in reply.seen()


def test_a_flag_named_like_a_domain_is_unwrapped_from_slacks_link(flag_bot: Bot) -> None:
    reply = flag_bot.command("flag show <http://x.io|x.io>", user="U0DEV")
    assert "not a flag name" not in reply.seen()
    assert "x.io" in reply.seen() and "production" in reply.seen()


def test_a_service_and_environment_wrapped_in_links_are_read_as_names(opsbot: Bot) -> None:
    reply = opsbot.command("lock <http://api|api> <mailto:staging|staging> --reason x", user="U0DEV")
    assert "deploy/api/staging" in reply.seen() and "locked" in reply.seen()


def test_a_nul_byte_in_a_reason_is_a_usage_error_naming_it(opsbot: Bot) -> None:
    reply = opsbot.command("lock api staging --reason 'cache\x00flush'", user="U0DEV")
    assert "`--reason` contains a control character (U+0000); remove it." in reply.seen()
    assert "Something went wrong" not in reply.seen()


def test_an_absurd_lock_duration_is_a_usage_error_naming_the_limit(opsbot: Bot) -> None:
    reply = opsbot.command("lock api staging for=999999999999d --reason x", user="U0DEV")
    assert "`for=`: `999999999999d` is longer than the maximum of" in reply.seen()
    assert "Something went wrong" not in reply.seen()


@pytest.mark.parametrize(
    "text,expected",
    [
        ("freeze staging 99999999999999w --reason x", "`<duration>`: `99999999999999w` is longer than the maximum of"),
        ("audit since=99999999999999999d", "`since=`: `99999999999999999d` is longer than the maximum of 366d"),
        ("incident postmortem 99999999999999", "Unknown incident `99999999999999`"),
        ("cancel 99999999999999999999", "99999999999999999999"),
        ("flag rollout checkout.new-flow 99999999999999999", "is not a percentage"),
    ],
)
def test_absurd_numbers_are_usage_errors_naming_the_argument(opsbot: Bot, text: str, expected: str) -> None:
    reply = opsbot.command(text, user="U0ADMIN")
    assert expected in reply.seen() and "Something went wrong" not in reply.seen()


def test_links_people_and_channels_in_a_reason_show_as_in_the_users_message(opsbot: Bot) -> None:
    reason = "see <https://status.io/inc|the status page>, ask <@U0ADMIN|alice> in <#C0DEPLOYS|deployments> &amp; co"
    reply = opsbot.command(f"lock api staging --reason {reason}", user="U0DEV")
    posted = reply.all_text()
    assert "see <https://status.io/inc|the status page>, ask <@U0ADMIN> in <#C0DEPLOYS|deployments> &amp; co" in posted
    assert "&lt;https" not in posted and "&lt;@" not in posted
    assert "see the status page (https://status.io/inc), ask @U0ADMIN in #C0DEPLOYS & co" in reply.seen()


def test_broadcasts_and_group_mentions_in_free_text_notify_nobody(opsbot: Bot) -> None:
    reply = opsbot.command("lock api staging --reason <!channel> <!here> <!everyone> <!subteam^S0SRE|@sre> look", user="U0DEV")
    posted = reply.all_text()
    assert "@channel @here @everyone @sre look" in posted
    assert "<!" not in posted


def test_audit_by_a_name_typed_without_the_at_list_finds_the_person(opsbot: Bot) -> None:
    opsbot.command("locks", user="U0ADMIN")
    opsbot.command("locks", user="U0DEV")
    by_name = opsbot.command("audit by=@alice", user="U0VIEWER").seen()
    assert "Name the person" not in by_name and "(by @U0ADMIN)" in by_name
    assert "U0DEV" not in by_name.split("\n", 1)[1]
    assert "(by @U0ADMIN)" in opsbot.command("audit by=<@U0ADMIN|alice>", user="U0VIEWER").seen()
    assert len(opsbot.emulator.calls_to("users.list")) == 1  # cached


def test_a_name_nobody_in_the_workspace_has_is_answered_with_the_at_list(opsbot: Bot) -> None:
    reply = opsbot.command("audit by=@zed", user="U0VIEWER")
    assert "`@zed` (by=) is not a user of this workspace; pick the person from the @ list." in reply.seen()


def test_an_incident_role_given_to_a_typed_name_goes_to_that_person(opsbot: Bot) -> None:
    channel = declare(opsbot)
    reply = opsbot.command("incident role scribe @dan", channel=channel.id)
    assert "scribe" in reply.seen() and "@U0APPROVER3" in reply.seen(), reply.seen()
    refused = opsbot.command("incident role scribe @nobody-here", channel=channel.id)
    assert "`@nobody-here` (@user) is not a user of this workspace; pick the person from the @ list." in refused.seen()


def test_the_emulator_lists_members_like_slack_in_pages(emulator: SlackEmulator) -> None:
    client = make_web_client(emulator.token, emulator.api_url)
    first = client.users_list(limit=3)
    assert [m["id"] for m in first["members"]] == sorted(USERS)[:3]
    member = first["members"][0]
    assert {"id", "team_id", "name", "deleted", "real_name", "is_bot", "profile"} <= set(member)
    assert member["profile"]["display_name"] == USERS[member["id"]]
    seen = [m["id"] for m in first["members"]]
    cursor = first["response_metadata"]["next_cursor"]
    while cursor:
        page = client.users_list(limit=3, cursor=cursor)
        seen += [m["id"] for m in page["members"]]
        cursor = page["response_metadata"]["next_cursor"]
    assert seen == sorted(USERS)
    assert client.users_info(user="U0ADMIN")["user"]["profile"]["display_name"] == "alice"


@pytest.mark.parametrize("action", ["approval_approve", "deploy_rollback", "incident_ack", "health_silence"])
def test_a_forged_button_value_with_a_nul_byte_is_not_found_not_a_database_error(opsbot: Bot, action: str) -> None:
    url = opsbot.emulator.response_url("C0OPS", "U0ADMIN", "1700000000.000100")
    body = payloads.block_action(
        user_id="U0ADMIN",
        channel_id="C0OPS",
        message_ts="1700000000.000100",
        action={"action_id": action, "value": "1\x00"},
        response_url=url,
    )
    assert opsbot.dispatch(body).status == 200
    answer = opsbot.emulator.wait_for(lambda: opsbot.emulator.responses(url))
    assert "Something went wrong" not in str(answer[-1].args.get("text"))


def test_an_incident_named_by_its_channel_from_slacks_channel_list_is_found(opsbot: Bot) -> None:
    channel = declare(opsbot)
    timeline = opsbot.command(f"incident timeline <#{channel.id}|{channel.name}>", channel="C0OPS").seen()
    assert "INC-1" in timeline and "Unknown incident" not in timeline


def test_people_by_name_skip_deleted_members_and_bots_and_refuse_a_shared_name(emulator: SlackEmulator) -> None:
    emulator.add_user("U0GONE", "gone", deleted=True)
    emulator.add_user("U0BOT", "robot", is_bot=True)
    emulator.add_user("U0TWIN1", "twin1", display_name="twin")
    emulator.add_user("U0TWIN2", "twin2", display_name="Twin")
    people = SlackPeople(make_web_client(emulator.token, emulator.api_url))
    assert people.find("Alice") == "U0ADMIN" and people.find("@twin1") == "U0TWIN1"
    assert people.find("gone") is None and people.find("robot") is None
    with pytest.raises(AmbiguousName, match="names 2 people"):
        people.find("twin")


def test_a_name_two_people_share_is_answered_with_the_at_list_not_as_nobody(opsbot: Bot) -> None:
    opsbot.emulator.add_user("U0TWIN1", "twin1", display_name="twin")
    opsbot.emulator.add_user("U0TWIN2", "twin2", display_name="Twin")
    reply = opsbot.command("audit by=@twin", user="U0ADMIN").seen()
    assert "`@twin` (by=) names 2 people in this workspace; pick the one you mean from the @ list." in reply
    assert "not a user" not in reply


def test_audit_action_by_a_namespace_lists_every_action_in_it(opsbot: Bot) -> None:
    opsbot.command("lock api staging --reason window", user="U0DEV")
    opsbot.command("locks", user="U0DEV")
    commands = opsbot.command("audit action=command", user="U0VIEWER").seen()
    assert "*command.lock*" in commands and "*command.locks*" in commands and "No entries match" not in commands
    lock = opsbot.command("audit action=lock", user="U0VIEWER").seen()  # a word: that command (a prefix of its name)
    assert "action command.lock ·" in lock and "*command.lock*" in lock
