"""Incident domain rules with fakes: names, parsing, the update template's refusals, reminders, exports, config."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import ConfigError
from bot.domain.incidents import declare, export, updates
from bot.domain.incidents.declare import DeclareIncident
from bot.domain.incidents.messages import StatusUpdate
from bot.domain.incidents.model import Incident, Kind, Status, TimelineEntry
from bot.domain.incidents.naming import VALID, channel_name, slug
from bot.domain.shared.errors import Unavailable, UsageError
from bot.domain.shared.policy import Actor
from tests.support import config_data, make_config
from tests.unit.incident_fakes import FakeConversations, FakeJobs, incident_world

NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
DOMAIN = Path(__file__).resolve().parents[2] / "bot" / "domain" / "incidents"


def an_incident(**changes: object) -> Incident:
    base = Incident(7, "Checkout errors", "P1", ("api",), Status.INVESTIGATING, "5% fail", "U0DEV", NOW, "U0DEV")
    return Incident(**{**base.__dict__, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "title, expected",
    [
        ("API: 500s on /checkout 🔥🔥", "inc-20261123-api-500s-on-checkout"),
        ("Café «Zahlung» — kaputt!!!", "inc-20261123-cafe-zahlung-kaputt"),
        ("🔥🔥🔥", "inc-20261123-incident"),
        ("<!channel> & <@U123>", "inc-20261123-channel-u123"),
    ],
)
def test_channel_names_follow_slacks_rules(title: str, expected: str) -> None:
    assert channel_name("inc", NOW, title) == expected


def test_a_500_character_title_is_cut_to_80_without_a_trailing_hyphen_even_with_a_suffix() -> None:
    title = "very long " * 50
    for attempt in (1, 2, 12):
        name = channel_name("incident_ops", NOW, title, attempt)
        assert VALID.match(name) and len(name) <= 80 and "--" not in name
    assert channel_name("inc", NOW, title, 12).endswith("-12")
    assert slug("A--B  c") == "a-b-c"


def test_next_update_takes_durations_and_utc_times_of_day() -> None:
    assert updates.parse_next("30m", NOW) == NOW + timedelta(minutes=30)
    assert updates.parse_next("1h30m", NOW) == NOW + timedelta(minutes=90)
    assert updates.parse_next("14:30", NOW) == NOW.replace(minute=30)
    assert updates.parse_next("13:00 UTC", NOW) == NOW.replace(hour=13) + timedelta(days=1)
    for bad in ("soon", "25:00", "3d"):
        with pytest.raises(ValueError):
            updates.parse_next(bad, NOW)


def test_the_update_form_names_each_missing_field() -> None:
    assert updates.form_errors({"status": "identified", "current_status": "x", "impact": " ", "next_update": ""}).keys() == {
        "impact",
        "next_update",
    }
    assert updates.form_errors({"status": "bogus", "current_status": "", "impact": "i", "next_update": "1h"}).keys() == {
        "status",
        "current_status",
    }
    assert updates.form_errors({"status": "resolved", "current_status": "fixed"}) == {}


def test_the_update_template_refuses_to_exist_without_impact_or_next_update() -> None:
    with pytest.raises(UsageError, match="needs Impact and Next update"):
        StatusUpdate(an_incident(), Status.IDENTIFIED, "", NOW, NOW, "", "x", None, "U0DEV")
    final = StatusUpdate(an_incident(), Status.RESOLVED, "", NOW, NOW, "", "fixed", None, "U0DEV", duration=timedelta(hours=1))
    assert final.duration == timedelta(hours=1)


def test_the_reminder_is_due_at_the_sooner_of_the_promise_and_the_cadence() -> None:
    reminders = incident_world()[1].reminders
    p1 = an_incident()
    assert reminders.due_after(p1, NOW, NOW + timedelta(hours=3)) == NOW + timedelta(minutes=60)
    assert reminders.due_after(p1, NOW, NOW + timedelta(minutes=10)) == NOW + timedelta(minutes=10)
    assert reminders.due_after(an_incident(severity="P3"), NOW, None) is None


def test_declare_tries_the_next_name_when_slack_says_it_is_taken() -> None:
    world, incidents, repository = incident_world()
    slack = world.conversations
    assert isinstance(slack, FakeConversations)
    slack.taken |= {"inc-20261123-checkout-errors", "inc-20261123-checkout-errors-2"}
    incidents.declarations.declare(Actor("U0DEV", "C0OPS"), DeclareIncident("p1", "Checkout errors"))
    incident = repository.get(1)
    assert incident is not None and incident.channel_name == "inc-20261123-checkout-errors-3" and incident.severity == "P1"


def test_a_declaration_slack_cannot_take_leaves_no_incident_behind() -> None:
    world, incidents, repository = incident_world()
    assert isinstance(world.conversations, FakeConversations)
    world.conversations.fail_create = Unavailable("Slack", "ratelimited")
    with pytest.raises(Unavailable):
        incidents.declarations.declare(Actor("U0DEV", "C0OPS"), DeclareIncident("P1", "Checkout errors"))
    assert repository.incidents == {}
    assert isinstance(world.jobs, FakeJobs) and world.jobs.scheduled == {}


def test_declare_schedules_the_reminder_and_each_escalation_step_that_names_someone() -> None:
    world, incidents, _ = incident_world(
        incidents={
            "escalation": [
                {"after_minutes": 0, "notify": ["U0APPROVER3"]},
                {"after_minutes": 15, "notify": []},
                {"after_minutes": 30, "notify": ["U0ADMIN"]},
            ]
        }
    )
    incidents.declarations.declare(Actor("U0DEV", "C0OPS"), DeclareIncident("P1", "Checkout errors"))
    assert isinstance(world.jobs, FakeJobs)
    assert {key: (at - NOW, name) for key, (at, name, _) in world.jobs.scheduled.items()} == {
        "incident-remind:1:1": (timedelta(minutes=60), "incidents.remind"),
        "incident-escalate:1:0": (timedelta(0), "incidents.escalate"),
        "incident-escalate:1:2": (timedelta(minutes=30), "incidents.escalate"),
    }


def test_exports_carry_every_entry_and_fold_user_text_to_one_line() -> None:
    entries = [
        TimelineEntry(7, NOW, Kind.DECLARED, "U0DEV", "P1 declared"),
        TimelineEntry(7, NOW + timedelta(minutes=3), Kind.NOTE, "U0DEV2", "line one\n# not a heading", link="https://x/p1"),
        TimelineEntry(7, NOW + timedelta(minutes=9), Kind.SERVICE_EVENT, "U0DEV", "rollback.done · api/production · v1.4.1"),
    ]
    data = json.loads(export.as_json(an_incident(), entries))
    assert data["incident"]["id"] == "INC-7" and [e["kind"] for e in data["timeline"]] == ["declared", "note", "service_event"]
    assert data["timeline"][0]["at"] == "2026-11-23T14:00:00Z"
    markdown = export.as_markdown(an_incident(), entries)
    assert "- **14:03** · Note · @U0DEV2 · line one # not a heading ([message](https://x/p1))" in markdown
    draft = export.postmortem(
        an_incident(resolved_at=NOW + timedelta(minutes=42), status=Status.RESOLVED), entries, NOW + timedelta(hours=1)
    )
    assert "- **Duration:** 42m" in draft and "- 14:09 rollback.done · api/production · v1.4.1" in draft
    assert "## Root cause" in draft and "| *to fill in* | | | |" in draft


def test_incident_config_errors_name_their_keys() -> None:
    for incidents, expected in (
        ({"severities": {"P1": {"responders": ["*"]}}}, "incidents.severities.P1.responders"),
        ({"severities": {"P-1": {}}}, "incidents.severities"),
        ({"escalation": [{"after_minutes": -5, "notify": []}]}, "incidents.escalation[0].after_minutes"),
        ({"severities": {"P1": {"update_every_minutes": 0}}}, "incidents.severities.P1.update_every_minutes"),
        ({"channel_prefix": "INC!"}, "incidents.channel_prefix"),
    ):
        with pytest.raises(ConfigError) as caught:
            make_config(incidents=incidents)
        assert any(error.startswith(expected) for error in caught.value.errors), caught.value.errors
    assert make_config(incidents={"severities": {"P1": {"update_every_minutes": 1}}}).incidents.severity("p1") is not None
    assert config_data()["channels"]["incidents"] == "C0INCIDENTS"


def test_a_form_field_with_a_control_character_is_named_and_refused() -> None:
    errors = updates.form_errors({"status": "resolved", "current_status": "fixed\x00", "impact": "a\nb\tc"})
    assert errors == {"current_status": "Remove the control character (U+0000)."}
    declared = declare.form_errors(make_config(), {"severity": "P1", "title": "t\x1b", "impact": "ok"})
    assert declared == {"title": "Remove the control character (U+001B)."}
