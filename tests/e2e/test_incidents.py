"""Incidents through Bolt's real dispatch: signed commands, clicks, modals and events; Slack is the emulator."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from bot.console.slack_emulator import Posted, SlackEmulator
from bot.domain.health.watches import ALERT_KIND
from bot.domain.incidents.naming import VALID
from bot.domain.shared.ports import ServiceEvent
from tests.e2e.incident_helpers import (
    BotFactory,
    channel_of,
    declare,
    incident_channels,
    last_view,
    outcomes,
    posts,
    react,
    submit,
)
from tests.support import Bot, make_config


@pytest.fixture
def bot_with(emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str) -> BotFactory:
    """A bot on this test's stores with config changes (top-level keys) and service overrides."""

    def make(**changes: Any) -> Bot:
        overrides = {k: changes.pop(k) for k in ("clock",) if k in changes}
        return Bot(
            emulator=emulator,
            db_url=pg_url,
            redis_client=redis_client,
            prefix=redis_prefix,
            config=make_config(**changes),
            **overrides,
        )

    return make


def test_declare_opens_a_channel_pins_the_declaration_and_posts_a_summary(opsbot: Bot) -> None:
    channel = declare(opsbot, 'P1 Checkout errors --service api --impact "5% of checkouts fail"', user="U0DEV")
    today = datetime.now(UTC).strftime("%Y%m%d")
    assert channel.name == f"inc-{today}-checkout-errors"
    assert "U0DEV" in channel.members
    declaration = opsbot.emulator.in_channel(channel.id)[0]
    seen = declaration.seen()
    assert "🚨 INCIDENT: api - Checkout errors" in seen
    for label in ("Status", "Severity", "Impact", "ETA", "Updates"):
        assert f"*{label}*" in seen
    assert "5% of checkouts fail" in seen and "Investigating" in seen and "every 60 min" in seen
    assert channel.pins == [declaration.ts]
    summary = opsbot.emulator.in_channel("C0INCIDENTS")[-1].seen()
    assert "INC-1 · P1" in summary and "commander @U0DEV" in summary and f"#{channel.id}" in summary


def test_declare_invites_the_severity_responders_resolved_from_user_groups(bot_with: BotFactory) -> None:
    bot = bot_with(incidents={"severities": {"P1": {"update_every_minutes": 60, "responders": ["S0SRE", "U0APPROVER3"]}}})
    channel = declare(bot)
    assert {"U0DEV", "U0APPROVER1", "U0APPROVER2", "U0APPROVER3"} <= channel.members


def test_a_long_title_with_emoji_and_punctuation_still_makes_a_valid_channel_name(opsbot: Bot) -> None:
    title = "🔥🔥 Zahlungsausfall: Café «checkout» 500s!!! / DB <!channel> & more — " + "x" * 500
    reply = opsbot.command(f'incident declare P2 "{title}"')
    channel = opsbot.emulator.channels[channel_of(reply)]
    assert VALID.match(channel.name) and len(channel.name) <= 80
    assert channel.name.startswith("inc-") and "-zahlungsausfall-cafe-checkout-500s-db-channel-more-xxx" in channel.name
    header = opsbot.emulator.in_channel(channel.id)[0].blocks[0]["text"]["text"]
    assert header.endswith("… (truncated)") and "<!channel>" not in header


def test_a_severity_that_is_not_configured_is_refused_and_nothing_is_created(opsbot: Bot) -> None:
    reply = opsbot.command("incident declare P5 Everything is on fire")
    assert "Severity `P5` is not configured; use one of `P0`, `P1`, `P2`, `P3`." in reply.seen()
    assert incident_channels(opsbot) == []
    assert ("U0DEV", "command.incident_declare", "usage_error") in opsbot.audit_actions()


def test_a_taken_channel_name_gets_a_suffix(opsbot: Bot) -> None:
    today = datetime.now(UTC).strftime("%Y%m%d")
    opsbot.emulator.fail("conversations.create", "name_taken")  # the first name, as Slack answers it
    opsbot.emulator.add_channel("C0OLD", f"inc-{today}-checkout-errors-2")  # the second, really taken
    channel = declare(opsbot)
    assert channel.name == f"inc-{today}-checkout-errors-3"


def test_a_rate_limited_channel_creation_is_retried_after_retry_after(opsbot: Bot) -> None:
    opsbot.emulator.fail("conversations.create", "ratelimited", status=429, retry_after=1)
    channel = declare(opsbot)
    calls = opsbot.emulator.calls_to("conversations.create")
    assert [c.status for c in calls] == [429, 200]
    assert channel.name.endswith("checkout-errors")


def test_slack_rate_limiting_beyond_the_retries_declares_nothing(opsbot: Bot) -> None:
    opsbot.emulator.fail("conversations.create", "ratelimited", status=429, retry_after=1, times=3)
    reply = opsbot.command("incident declare P1 Checkout errors", timeout=10)
    assert "Slack is rate limiting opsbot right now; nothing was changed. Try again in 1 s" in reply.seen()
    assert incident_channels(opsbot) == [] and opsbot.reads.incidents.open_incidents() == []
    assert "No open incidents." in opsbot.command("incident list").seen()


def test_an_invite_answered_with_channel_not_found_is_reported_but_the_incident_stands(opsbot: Bot) -> None:
    opsbot.emulator.fail("conversations.invite", "channel_not_found")
    reply = opsbot.command("incident declare P1 Checkout errors")
    assert "Declared" in reply.seen()
    assert "nobody could be invited" in reply.seen() and "channel_not_found" in reply.seen()


def test_two_updates_edit_the_status_message_and_fill_the_timeline(opsbot: Bot) -> None:
    channel = declare(opsbot)
    first = opsbot.command(
        'incident update identified "Bad config in v1.4.2" --what "A flag flipped" --next 30m', channel=channel.id
    )
    assert "Update posted" in first.seen() and "next update is due by" in first.seen()
    opsbot.command('incident update monitoring "Rolled back; errors falling" --impact "1% of checkouts fail"', channel=channel.id)
    updates = posts(opsbot, channel.id, "Incident Update")
    assert len(updates) == 2
    latest = updates[-1].seen()
    for label in ("Status", "Impact", "Started", "Last Update", "Current status", "Next update"):
        assert f"*{label}*" in latest
    assert "Monitoring" in latest and "1% of checkouts fail" in latest and "Rolled back; errors falling" in latest
    assert "*What happened*\nA flag flipped" in updates[0].seen()
    pinned = opsbot.emulator.find(channel.pins[0])
    assert pinned is not None and pinned.edits >= 2 and "Monitoring" in pinned.seen() and "1% of checkouts fail" in pinned.seen()
    timeline = opsbot.command("incident timeline", channel=channel.id).seen()
    assert "identified: Bad config in v1.4.2" in timeline and "monitoring: Rolled back; errors falling" in timeline


def test_an_update_without_impact_is_refused_and_nothing_is_posted(opsbot: Bot) -> None:
    channel = declare(opsbot, "P1 Checkout errors")
    reply = opsbot.command('incident update investigating "Looking at logs"', channel=channel.id)
    assert "The update template needs Impact" in reply.seen() and "nothing was posted" in reply.seen()
    assert posts(opsbot, channel.id, "Incident Update") == []


def test_an_update_from_someone_not_in_the_incident_is_refused(opsbot: Bot) -> None:
    channel = declare(opsbot)
    reply = opsbot.command('incident update identified "I think it is DNS"', user="U0APPROVER3", channel=channel.id)
    assert "needs the *incident participant* role" in reply.seen()
    assert posts(opsbot, channel.id, "Incident Update") == []
    opsbot.command("incident role scribe <@U0APPROVER3>", channel=channel.id)
    assert (
        "Update posted" in opsbot.command('incident update identified "It is DNS"', user="U0APPROVER3", channel=channel.id).seen()
    )


def test_incident_commands_outside_an_incident_channel_say_where_to_run_them(opsbot: Bot) -> None:
    channel = declare(opsbot)
    for text in ('update identified "x"', "resolve", "freeze", "ack", "role scribe @U0DEV2", "timeline"):
        reply = opsbot.command(f"incident {text}")
        assert "This is not an incident channel" in reply.seen(), text
        assert f"#{channel.name}" in reply.seen()


@pytest.mark.parametrize(
    "error,expected",
    [
        ("not_in_channel", "Slack refused to post a message (`not_in_channel`): invite @opsbot to"),
    ],
)
def test_slacks_refusals_of_an_update_say_what_to_do(opsbot: Bot, error: str, expected: str) -> None:
    channel = declare(opsbot)
    opsbot.emulator.fail("chat.postMessage", error)
    reply = opsbot.command('incident update identified "Bad config"', channel=channel.id).seen()
    assert expected in reply
    assert error != "not_in_channel" or "(`/invite @opsbot`), then try again." in reply


def test_an_update_while_slack_rate_limits_says_when_to_try_again(opsbot: Bot) -> None:
    channel = declare(opsbot)
    opsbot.emulator.fail("chat.postMessage", "ratelimited", times=5, status=429, retry_after=1)  # the client waits twice
    reply = opsbot.command('incident update identified "Bad config"', channel=channel.id, timeout=15).seen()
    assert "Slack is rate limiting opsbot right now; nothing was changed. Try again in 1 s (post a message)." in reply


def test_an_update_slack_answers_with_channel_not_found_records_nothing(opsbot: Bot) -> None:
    channel = declare(opsbot)
    opsbot.emulator.fail("chat.postMessage", "channel_not_found")
    reply = opsbot.command('incident update identified "Bad config"', channel=channel.id)
    assert "Slack refused to post a message (`channel_not_found`): Slack cannot find" in reply.seen()
    assert f"(`{channel.id}`): it was deleted, or it is private and opsbot is not in it." in reply.seen()
    incident = opsbot.reads.incidents.by_channel(channel.id)
    assert incident is not None and incident.status.value == "investigating" and incident.last_update_at is None
    assert [e.kind.value for e in opsbot.reads.incidents.timeline(incident.id)] == ["declared"]


def test_the_update_form_names_the_missing_field_and_posts_once_complete(opsbot: Bot) -> None:
    channel = declare(opsbot, "P1 Checkout errors")
    assert "The update form for INC-1 is open." in opsbot.command("incident update", channel=channel.id).seen()
    view = last_view(opsbot)
    answer = submit(opsbot, view, "U0DEV", status="identified", current_status="Bad config", next_update="")
    assert answer["response_action"] == "errors"
    assert set(answer["errors"]) == {"impact", "next_update"}
    assert answer["errors"]["impact"].startswith("Impact is required")
    assert posts(opsbot, channel.id, "Incident Update") == []
    answer = submit(
        opsbot, view, "U0DEV", status="identified", current_status="Bad config", impact="Checkouts fail", next_update="soon"
    )
    assert answer["errors"] == {"next_update": "soon is not a time like 30m, 1h or 14:30 (UTC)."}
    assert (
        submit(
            opsbot, view, "U0DEV", status="identified", current_status="Bad config", impact="Checkouts fail", next_update="45m"
        )
        == {}
    )
    update = opsbot.emulator.wait_for(lambda: posts(opsbot, channel.id, "Incident Update"))[0].seen()
    assert "Checkouts fail" in update and "Bad config" in update
    told = opsbot.emulator.wait_for(lambda: [m for m in opsbot.emulator.ephemerals("U0DEV") if "Update posted" in m.seen()])
    assert told[0].channel == channel.id


def test_the_declare_form_declares_with_what_was_typed(opsbot: Bot) -> None:
    assert "The declare form is open." in opsbot.command("incident declare").seen()
    view = last_view(opsbot)
    assert submit(opsbot, view, "U0DEV", severity="", title="  ") == {
        "response_action": "errors",
        "errors": {"severity": "Pick a severity.", "title": "A title is required: one line saying what is broken."},
    }
    assert submit(opsbot, view, "U0DEV", severity="P2", title="Search is slow", service="web", impact="Search takes 10s") == {}
    declared = opsbot.emulator.wait_for(lambda: [m for m in opsbot.emulator.ephemerals("U0DEV") if "Declared" in m.seen()])
    assert declared[0].channel == "C0OPS" and "web - Search is slow" in declared[0].seen()


def test_an_unknown_or_expired_alert_is_a_clear_answer(opsbot: Bot) -> None:
    answer = opsbot.click(_alert(), "Declare incident", user="U0DEV")
    assert "Unknown health alert (it may have expired)" in answer[0]["text"] and answer[0]["response_type"] == "ephemeral"


def test_the_alert_button_opens_the_declare_form_filled_from_the_alert(opsbot: Bot) -> None:
    # The alert as the health watch stores it; the button carries only its opaque id.
    alert_id = opsbot.services.adapters.state.put(
        ALERT_KIND,
        {
            "service": "api",
            "environment": "production",
            "summary": "api production DOWN: /health failing (3 failures in 5 min)",
            "severity_hint": "P1",
            "level": "down",
            "at": "2026-11-23T14:00:00+00:00",
            "checks": [],
        },
        ttl_seconds=3600,
    )
    answer = opsbot.click(_alert(alert_id), "Declare incident", user="U0DEV")
    assert "The declare form is open." in answer[0]["text"]
    view = last_view(opsbot)
    fields = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    assert fields["severity"]["initial_option"]["value"] == "P1" and fields["service"]["initial_option"]["value"] == "api"
    assert fields["title"]["initial_value"] == "api production DOWN: /health failing (3 failures in 5 min)"
    assert submit(opsbot, view, "U0DEV") == {}
    channel = opsbot.emulator.wait_for(lambda: incident_channels(opsbot))[0]
    assert channel.name.endswith("-api-production-down-health-failing-3-failures-in-5-min")


def test_roles_ack_and_list(opsbot: Bot) -> None:
    channel = declare(opsbot)
    denied = opsbot.command("incident role commander <@U0DEV2>", user="U0VIEWER", channel=channel.id)
    assert "needs the *incident commander* role" in denied.seen()
    handed = opsbot.command("incident role commander <@U0DEV2>", channel=channel.id)
    assert handed.ephemeral_to is None and "@U0DEV2 is now the incident commander. (set by @U0DEV)" in handed.seen()
    assert "U0DEV2" in channel.members
    assert "*Commander*\n@U0DEV2" in opsbot.emulator.find(channel.pins[0]).seen()  # type: ignore[union-attr]
    acked = opsbot.command("incident ack", user="U0DEV2", channel=channel.id)
    assert "@U0DEV2 acknowledged the incident" in acked.seen()
    assert "already acknowledged by @U0DEV2" in opsbot.command("incident ack", channel=channel.id).seen()
    listing = opsbot.command("incident list", user="U0VIEWER").seen()
    assert (
        "INC-1 · P1" in listing
        and "commander @U0DEV2" in listing
        and "last update none yet" in listing
        and "acknowledged" in listing
    )


def test_freeze_holds_the_deploy_locks_until_resolved(opsbot: Bot) -> None:
    opsbot.command("lock api production for=1h --reason 'migration'", user="U0DEV2")
    channel = declare(opsbot)
    frozen = opsbot.command("incident freeze", channel=channel.id).seen()
    assert "Locked now: `deploy/api/staging`" in frozen
    assert "deploy/api/production (held by @U0DEV2: held by hand: migration)" in frozen
    locks = opsbot.command("locks").seen()
    assert "deploy freeze for INC-1" in locks
    assert "Already frozen: `deploy/api/staging`" in opsbot.command("incident freeze staging", channel=channel.id).seen()
    assert "needs the *deployer* role" in opsbot.command("incident freeze", user="U0VIEWER", channel=channel.id).seen()
    opsbot.command("incident resolve Fixed", channel=channel.id)
    assert opsbot.services.adapters.locks.holder("deploy/api/staging") is None
    assert opsbot.services.adapters.locks.holder("deploy/api/production") is not None  # not ours to release


def test_resolve_posts_the_final_update_unpins_and_writes_the_postmortem(opsbot: Bot) -> None:
    channel = declare(opsbot)
    opsbot.command('incident update identified "Bad config"', channel=channel.id)
    assert "needs the *incident commander* role" in opsbot.command("incident resolve", user="U0DEV2", channel=channel.id).seen()
    reply = opsbot.command('incident resolve "Config reverted"', channel=channel.id)
    assert "INC-1 is resolved after" in reply.seen() and "/ops incident postmortem 1" in reply.seen()
    final = posts(opsbot, channel.id, "Incident Resolved")[0].seen()
    assert "*Total duration*" in final and "Config reverted" in final
    assert channel.pins == []
    assert "RESOLVED: api - Checkout errors" in opsbot.emulator.in_channel(channel.id)[0].seen()
    assert "Resolved after" in opsbot.emulator.in_channel("C0INCIDENTS")[-1].seen()
    draft = opsbot.command("incident postmortem INC-1", user="U0VIEWER").seen()
    for heading in (
        "# Post-mortem (draft): INC-1",
        "## Summary",
        "Config reverted",
        "## Impact",
        "## Timeline (UTC)",
        "## Root cause",
        "## Action items",
    ):
        assert heading in draft
    assert re.search(r"\*\*\d\d:\d\d\*\* · Update · @U0DEV · identified: Bad config", draft)
    assert "was resolved at" in opsbot.command("incident resolve", channel=channel.id).seen()
    assert "No open incidents." in opsbot.command("incident list").seen()


def test_postmortem_of_an_open_or_unknown_incident_says_so(opsbot: Bot) -> None:
    declare(opsbot)
    assert "INC-1 is still open" in opsbot.command("incident postmortem 1").seen()
    assert "Unknown incident `42`." in opsbot.command("incident postmortem 42").seen()


def test_a_message_marked_with_the_reaction_joins_the_timeline_once(opsbot: Bot) -> None:
    channel = declare(opsbot)
    said = opsbot.emulator.user_says(channel.id, "U0DEV", "Rolled back to v1.4.1 <!here>")
    reply_in_thread = opsbot.emulator.user_says(channel.id, "U0DEV2", "Error rate back to 0.1%", thread_ts=said.ts)
    react(opsbot, channel.id, said.ts, "U0DEV", reaction="tada")  # not the timeline reaction: ignored
    assert react(opsbot, channel.id, said.ts, "U0DEV", event_id="Ev1").status == 200
    # Slack's retry of the same event (same event_id) is acked and dropped before any handler: one row, not two.
    assert react(opsbot, channel.id, said.ts, "U0DEV", event_id="Ev1", retry=1).status == 200
    react(opsbot, channel.id, said.ts, "U0DEV2")  # a second person pins the same message: the timeline's own check
    react(opsbot, channel.id, reply_in_thread.ts, "U0DEV", reaction="pushpin::skin-tone-2")
    outside = opsbot.emulator.user_says("C0OPS", "U0DEV", "unrelated")
    react(opsbot, "C0OPS", outside.ts, "U0DEV")
    assert sorted(outcomes(opsbot, "event.reaction_added", 4)) == ["added", "added", "duplicate", "ignored"]
    incident = opsbot.reads.incidents.by_channel(channel.id)
    assert incident is not None
    notes = [e for e in opsbot.reads.incidents.timeline(incident.id) if e.kind.value == "note"]
    # Sorted: the two reactions' events are handled concurrently (as Slack may deliver them), in either order.
    assert sorted((n.actor, n.text) for n in notes) == [
        ("U0DEV", "Rolled back to v1.4.1 <!here>"),
        ("U0DEV2", "Error rate back to 0.1%"),
    ]
    assert all(n.link and n.link.startswith("https://") for n in notes)
    timeline = opsbot.command("incident timeline", channel=channel.id)
    assert "Rolled back to v1.4.1 @here" in timeline.all_text() and "<!here>" not in timeline.all_text()


def test_service_events_land_in_the_open_incidents_of_that_service(opsbot: Bot) -> None:
    api = declare(opsbot, "P1 Checkout errors --service api")
    web = declare(opsbot, "P2 Slow pages --service web")
    event = ServiceEvent(
        "api",
        "production",
        "rollback.done",
        "Rolled back api to v1.4.1 (was v1.4.2)",
        "U0DEV2",
        datetime.now(UTC),
        "https://ci.example.com/runs/7",
    )
    opsbot.services.incidents.events.publish(event)
    opsbot.services.incidents.events.publish(event)  # published twice: posted once
    posted = posts(opsbot, api.id, "rollback.done")
    assert len(posted) == 1 and "api/production · Rolled back api to v1.4.1 (was v1.4.2)" in posted[0].seen()
    assert "details (https://ci.example.com/runs/7)" in posted[0].seen()
    assert posts(opsbot, web.id, "rollback.done") == []
    assert (
        "Service event* · @U0DEV2 · rollback.done · api/production" in opsbot.command("incident timeline", channel=api.id).seen()
    )
    opsbot.command("incident resolve", channel=api.id)
    opsbot.services.incidents.events.publish(
        ServiceEvent("api", "production", "deploy.succeeded", "v1.4.3", "U0DEV", datetime.now(UTC))
    )
    assert posts(opsbot, api.id, "deploy.succeeded") == []


def test_timeline_exports_as_json_and_markdown(opsbot: Bot) -> None:
    channel = declare(opsbot)
    opsbot.command('incident update identified "Bad <config>"', channel=channel.id)
    reply = opsbot.command("incident timeline 1 format=json", user="U0VIEWER")
    as_json = reply.seen()
    assert '"id": "INC-1"' in as_json and '"kind": "update"' in as_json and '"text": "identified: Bad <config>"' in as_json
    [block] = [b for b in reply.blocks if b["type"] == "markdown"]  # one block to copy, valid JSON inside its fence
    exported = json.loads(block["text"].removeprefix("```json\n").removesuffix("\n```"))
    assert exported["incident"]["id"] == "INC-1" and any(e["kind"] == "update" for e in exported["timeline"])
    as_markdown = opsbot.command("incident timeline INC-1 format=markdown", user="U0VIEWER").seen()
    assert (
        "# INC-1 timeline: api - Checkout errors" in as_markdown and "· Update · @U0DEV · identified: Bad <config>" in as_markdown
    )
    assert "`format=` takes json or markdown." in opsbot.command("incident timeline 1 format=pdf").seen()


def _alert(alert_id: str = "alert-1") -> Posted:
    """A health alert as the health checks post it: its button carries only the alert id."""
    button = {
        "type": "button",
        "action_id": "incident_declare_from_alert",
        "text": {"type": "plain_text", "text": "Declare incident"},
        "value": alert_id,
    }
    return Posted("C0ALERTS", "1700000000.000100", "api is failing", [{"type": "actions", "elements": [button]}])


def test_the_same_declaration_sent_again_answers_with_the_first_incident_not_a_second(opsbot: Bot) -> None:
    first = declare(opsbot, "P1 Checkout down")
    again = opsbot.command("incident declare P1 checkout  DOWN", user="U0DEV")  # autocorrect and spacing aside
    seen = again.seen()
    assert re.search(r"You declared \*INC-\d+\* \(P1\) _Checkout down_ \d+ s ago, in", seen), seen
    assert "Nothing new was declared." in seen and first.id in again.all_text()
    assert len(opsbot.reads.incidents.open_incidents()) == 1  # type: ignore[union-attr]
    assert len(opsbot.emulator.calls_to("conversations.create")) == 1

    another = opsbot.click(again, "Declare another", "U0DEV")[-1]["text"]  # on purpose: a second incident
    assert "Declared" in another and len(opsbot.reads.incidents.open_incidents()) == 2  # type: ignore[union-attr]
    assert ("U0DEV", "command.incident_declare", "duplicate") in opsbot.audit_actions()
    someone_else = opsbot.command("incident declare P1 Checkout down", user="U0DEV2").seen()
    assert "Declared" in someone_else  # another person's declaration is theirs to make


def test_a_slow_channel_creation_says_what_is_under_way_and_a_second_send_declares_nothing(opsbot: Bot) -> None:
    opsbot.emulator.fail("conversations.create", "ratelimited", status=429, retry_after=3)  # Slack is slow
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(opsbot.command, "incident declare P1 Checkout down", "U0DEV", timeout=20)
        told = opsbot.emulator.wait_for(
            lambda: next((m for m in opsbot.emulator.messages if m.ephemeral_to == "U0DEV" and "Declaring" in m.seen()), None),
            timeout=10,
        )
        assert re.search(r"⏳ Declaring \*INC-\d+\* _Checkout down_ — creating #inc-\d{8}-checkout-down\.", told.seen())
        second = opsbot.command("incident declare P1 Checkout down", user="U0DEV").seen()  # impatient, 1-2 s later
        assert "You declared" in second and "its channel is being created" in second
        assert "Declared" in first.result().seen()
    assert len(opsbot.reads.incidents.open_incidents()) == 1  # type: ignore[union-attr]
    assert len([c for c in opsbot.emulator.calls_to("conversations.create") if c.status == 200]) == 1


def test_an_incident_whose_channel_was_archived_is_updated_and_resolved_by_id_from_anywhere(opsbot: Bot) -> None:
    channel = declare(opsbot, 'P1 Checkout down --impact "checkouts fail"', user="U0DEV")
    incident = opsbot.reads.incidents.by_channel(channel.id)  # type: ignore[union-attr]
    opsbot.emulator.channels[channel.id].archived = True  # someone archived it while the incident is open

    refused = opsbot.command(f"incident resolve {incident.ref} fixed", user="U0DEV2").seen()  # not its commander
    assert "needs the *incident commander* role" in refused

    update = opsbot.command(
        f'incident update {incident.ref} identified "Bad config pushed" --impact "checkouts fail"', user="U0DEV"
    ).seen()
    assert "Traceback" not in update and "not an incident channel" not in update
    relayed = [m.seen() for m in opsbot.emulator.in_channel("C0INCIDENTS")]
    assert any(f"#{channel.name} is archived; {incident.ref}'s posts come here." in text for text in relayed)
    assert any("Bad config pushed" in text for text in relayed)

    resolved = opsbot.command(f"incident resolve {incident.ref} rolled back the config", user="U0ADMIN").seen()
    assert "Traceback" not in resolved
    after = opsbot.reads.incidents.get(incident.id)  # type: ignore[union-attr]
    assert after.status.value == "resolved"
    usage = opsbot.command("help incident update").seen()
    assert "incident update [INC-n]" in usage
