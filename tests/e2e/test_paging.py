"""On-call paging through PagerDuty's Events API v2 (a validating double on loopback), and `/ops oncall`.

A page is an outbox effect recorded with the incident change that implies it: PagerDuty answering 429 or 5xx delays
it, never loses or doubles it; trigger, acknowledge and resolve share the incident's ``dedup_key``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from bot.config import OpsConfig
from bot.console.slack_emulator import SlackEmulator
from tests.e2e.incident_helpers import declare
from tests.pagerduty_double import PagerDutyDouble
from tests.support import Bot, eventually, make_config


@pytest.fixture
def pagerduty(monkeypatch: pytest.MonkeyPatch) -> Iterator[PagerDutyDouble]:
    double = PagerDutyDouble().start()
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEY", double.routing_key)
    monkeypatch.setenv("PAGERDUTY_TOKEN", double.token)
    yield double
    double.stop()


def paging_config(double: PagerDutyDouble, **incidents: Any) -> OpsConfig:
    return make_config(
        pagerduty={
            "events_url": f"{double.url}/v2/enqueue",
            "api_url": double.url,
            "escalation_policies": {"api": "PAPI001"},
        },
        incidents={
            "severities": {
                "P0": {"update_every_minutes": 30, "page": True},
                "P1": {"update_every_minutes": 60, "page": True},
                "P2": {
                    "update_every_minutes": 240,
                    "escalation": [{"after_minutes": 0, "notify": [], "page": True, "label": "on-call"}],
                },
                "P3": {},
            },
            **incidents,
        },
    )


@pytest.fixture
def make_bot(emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str) -> Any:
    return lambda config: Bot(emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=config)


def delivered(bot: Bot, condition: Any, timeout: float = 20.0) -> Any:
    """Run the outbox's retry rounds (as `opsbot worker` does) until ``condition()`` holds."""
    return eventually(lambda: bot.services.delivery.drain() >= 0 and condition(), timeout=timeout)


def test_a_p1_pages_once_and_is_acknowledged_and_resolved_with_the_same_dedup_key_through_two_429s(
    make_bot: Any, pagerduty: PagerDutyDouble
) -> None:
    bot = make_bot(paging_config(pagerduty))
    pagerduty.fail(429, times=2, retry_after="1")
    channel = declare(bot)
    delivered(bot, lambda: pagerduty.alerts)
    assert [status for status, _ in pagerduty.refused] == [429, 429]
    (alert,) = pagerduty.alerts.values()
    assert alert.dedup_key == "opsbot-INC-1" and alert.severity == "error" and alert.summary == "INC-1 P1: Checkout errors"

    assert "acknowledged the incident" in bot.command("incident ack", channel=channel.id).seen()
    delivered(bot, lambda: alert.status == "acknowledged")
    bot.command('incident resolve "Config reverted"', channel=channel.id)
    delivered(bot, lambda: alert.status == "resolved")

    assert alert.events == ["trigger", "acknowledge", "resolve"]  # one page: no trigger was sent twice
    assert {event["dedup_key"] for event in pagerduty.accepted} == {"opsbot-INC-1"}
    assert all(event["routing_key"] == pagerduty.routing_key for event in pagerduty.accepted)


def test_a_5xx_is_retried_and_the_page_arrives_once(make_bot: Any, pagerduty: PagerDutyDouble) -> None:
    bot = make_bot(paging_config(pagerduty))
    pagerduty.fail(503, times=1)
    declare(bot, "P0 Payments down --service api")
    delivered(bot, lambda: pagerduty.alerts)
    assert [e["event_action"] for e in pagerduty.accepted] == ["trigger"]
    assert next(iter(pagerduty.alerts.values())).severity == "critical"


def test_a_severity_that_does_not_page_sends_nothing_and_an_escalation_step_may_page(
    make_bot: Any, pagerduty: PagerDutyDouble
) -> None:
    bot = make_bot(paging_config(pagerduty))
    declare(bot, "P3 Typo on the status page")
    bot.services.delivery.drain()
    assert pagerduty.accepted == []

    channel = declare(bot, "P2 Slow search --service api")  # P2 pages at its first escalation step, not on declaration
    delivered(bot, lambda: pagerduty.alerts)
    (alert,) = pagerduty.alerts.values()
    assert alert.dedup_key == "opsbot-INC-2" and alert.severity == "warning"
    eventually(
        lambda: "escalated to on-call: paged through PagerDuty" in bot.command("incident timeline", channel=channel.id).seen()
    )


def test_the_page_payload_is_one_pagerduty_accepts_with_the_longest_title(make_bot: Any, pagerduty: PagerDutyDouble) -> None:
    bot = make_bot(paging_config(pagerduty))
    declare(bot, "P1 " + "<b>&" * 249 + "xyz", user="U0DEV2")  # the longest title opsbot takes (999 characters)
    delivered(bot, lambda: pagerduty.alerts)
    summary = pagerduty.accepted[0]["payload"]["summary"]
    assert pagerduty.refused == [] and len(summary) <= 1024 and summary.startswith("INC-1 P1: <b>&<b>&")


def test_a_wrong_routing_key_is_refused_by_pagerduty_and_the_outbox_says_so_for_good(
    make_bot: Any, pagerduty: PagerDutyDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEY", "not-the-key")
    bot = make_bot(paging_config(pagerduty))
    declare(bot)
    failed = delivered(bot, lambda: [e for e in bot.services.outbox.listing(("failed",)) if e.kind == "pager.event"])
    assert "PagerDuty refused the event (400): 'routing_key' is invalid" in failed[0].last_error
    assert ("opsbot", "outbox.failed", "failed") in bot.audit_actions()


def test_oncall_shows_who_is_on_call_for_a_service(make_bot: Any, pagerduty: PagerDutyDouble) -> None:
    pagerduty.add_oncall("Alice Ng", "alice@example.com", "PAPI001", "API on-call", 1, "2026-12-01T09:00:00Z")
    pagerduty.add_oncall("Bob Li", "bob@example.com", "PAPI001", "API on-call", 2)
    pagerduty.add_oncall("Carol Diaz", "carol@example.com", "PWEB001", "Web on-call", 1)
    bot = make_bot(paging_config(pagerduty))
    shown = bot.command("oncall api", user="U0VIEWER").seen()
    assert "On call now for api" in shown
    assert "*Level 1* · Alice Ng (alice@example.com) · API on-call · until" in shown and "*Level 2* · Bob Li" in shown
    assert "Carol" not in shown
    assert "Carol Diaz" in bot.command("oncall", user="U0VIEWER").seen()
    assert "No PagerDuty escalation policy is set for `web`" in bot.command("oncall web").seen()


def test_oncall_with_a_bad_token_or_without_pagerduty_says_what_to_fix(
    make_bot: Any, pagerduty: PagerDutyDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAGERDUTY_TOKEN", "wrong")
    bot = make_bot(paging_config(pagerduty))
    assert "PagerDuty refused the API token (401); check PAGERDUTY_TOKEN." in bot.command("oncall api").seen()
    plain = make_bot(make_config())
    assert "PagerDuty is not configured" in plain.command("oncall").seen()


def test_oncall_with_pagerduty_unreachable_says_so_as_for_a_read(make_bot: Any, pagerduty: PagerDutyDouble) -> None:
    config = paging_config(pagerduty)
    assert config.pagerduty is not None
    gone = config.model_copy(update={"pagerduty": config.pagerduty.model_copy(update={"api_url": "http://127.0.0.1:9"})})
    shown = make_bot(gone).command("oncall api").seen()
    assert "PagerDuty could not be reached (ConnectError); try again in a minute." in shown
    assert "nothing was changed" not in shown
