"""Watch ticks with fakes: each state change announced once, with buttons, audited; ticks leave no audit rows."""

from __future__ import annotations

import pytest

from bot.domain import health
from bot.domain.context import Services
from bot.domain.errors import NotFound, NotPermitted
from bot.domain.health_watch import HealthAlert, ensure_watches, tick
from tests.support import FrozenClock, make_config
from tests.unit.health_fakes import call_as, fake_services

CHECKS = {"health": [{"url": "https://api.example.com/health/db"}]}
CONFIG = make_config(
    services={"api": {"environments": {"staging": {}, "production": CHECKS}}, "web": {"environments": {"production": CHECKS}}},
    health={"watches": [{"services": ["api"], "environments": ["production"], "interval": "1m", "failures": 3, "window": "5m",
                         "slow_checks": 2, "recover_checks": 2}]},
)
TARGET = {"service": "api", "environment": "production"}


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def services(clock: FrozenClock) -> Services:
    return fake_services(CONFIG, clock)


def ticks(services: Services, clock: FrozenClock, statuses: str) -> None:
    for letter in statuses:
        services.health.status[("api", "production")] = {"h": "healthy", "d": "degraded", "f": "failed"}[letter]  # type: ignore[union-attr]
        tick(call_as(services), TARGET)
        clock.advance(minutes=1)


def alerts(services: Services) -> list[HealthAlert]:
    return [m for _, m in services.notifier.posts if isinstance(m, HealthAlert)]  # type: ignore[attr-defined]


def test_down_is_announced_once_to_the_alerts_channel_with_both_buttons(services: Services, clock: FrozenClock) -> None:
    ticks(services, clock, "fffff")
    [(channel, alert)] = services.notifier.posts  # type: ignore[attr-defined]
    assert channel == "C0ALERTS"
    assert alert.headline == "🔴 api production DOWN: /health/db timeout after 2000 ms (3 failures in 5 min)"
    assert alert.alert_id is not None


def test_recovery_is_announced_once_with_how_long_it_was_down(services: Services, clock: FrozenClock) -> None:
    ticks(services, clock, "ffffffffffffhhhhh")
    assert [a.headline for a in alerts(services)] == [
        "🔴 api production DOWN: /health/db timeout after 2000 ms (3 failures in 5 min)",
        "🟢 api production recovered after 11 min",
    ]
    assert alerts(services)[1].alert_id is None  # good news carries no buttons


def test_state_changes_are_audited_and_plain_ticks_are_not(services: Services, clock: FrozenClock) -> None:
    ticks(services, clock, "hhfffffhh")
    assert services.audit.actions() == ["health.down", "health.recovered"]  # type: ignore[attr-defined]
    down = services.audit.entries[0]  # type: ignore[attr-defined]
    assert (down.actor, down.target, down.service, down.environment, down.source) == ("opsbot", "api/production", "api", "production", "job")


def test_slow_checks_warn_once(services: Services, clock: FrozenClock) -> None:
    ticks(services, clock, "ddddhh")
    assert [a.headline for a in alerts(services)] == [
        "🟠 api production SLOW: /health/db slow: 800 ms (warning at 500 ms) (2 checks in a row)",
        "🟢 api production latency back to normal after 4 min",
    ]


def test_each_tick_schedules_the_next_under_one_key_first(services: Services, clock: FrozenClock) -> None:
    ticks(services, clock, "h")
    [(at, name, payload, key)] = services.jobs.scheduled  # type: ignore[attr-defined]
    assert (name, payload, key) == ("health.watch_tick", TARGET, "health-watch:api:production")
    assert (at - services.clock.now()).total_seconds() == 0  # the clock moved one interval after the tick


def test_a_watch_removed_from_the_config_ends_its_chain(clock: FrozenClock) -> None:
    services = fake_services(make_config(services={"api": {"environments": {"production": CHECKS}}}), clock)
    tick(call_as(services), TARGET)
    assert services.jobs.scheduled == [] and services.health.calls == []  # type: ignore[attr-defined]


def test_a_tick_while_another_replica_holds_the_lease_checks_nothing(services: Services) -> None:
    services.watches.lease("api/production", 30)  # type: ignore[union-attr]
    tick(call_as(services), TARGET)
    assert services.health.calls == []  # type: ignore[attr-defined]


def test_a_second_chain_ticking_right_after_the_first_is_skipped(services: Services, clock: FrozenClock) -> None:
    tick(call_as(services), TARGET)
    clock.advance(seconds=5)
    tick(call_as(services), TARGET)
    assert len(services.health.calls) == 1  # type: ignore[attr-defined]


def test_ensure_starts_every_watch_and_its_own_supervisor(services: Services) -> None:
    ensure_watches(call_as(services), {})
    keys = [key for *_, key in services.jobs.scheduled]  # type: ignore[attr-defined]
    assert keys == ["health-watch:api:production", "health:supervisor"]


def test_a_failed_post_is_retried_on_the_next_tick(services: Services, clock: FrozenClock) -> None:
    services.notifier.down = True  # type: ignore[attr-defined]
    ticks(services, clock, "fff")
    services.notifier.down = False  # type: ignore[attr-defined]
    ticks(services, clock, "ff")
    assert len(alerts(services)) == 1 and "DOWN" in alerts(services)[0].headline


def test_silence_holds_back_the_next_down_but_recovery_still_comes(services: Services, clock: FrozenClock) -> None:
    ticks(services, clock, "dd")
    alert_id = alerts(services)[0].alert_id
    assert alert_id is not None
    reply = health.silence(call_as(services, "U0DEV"), alert_id)
    assert reply.visibility == "in_channel"
    ticks(services, clock, "fffff")
    assert len(alerts(services)) == 1  # DOWN while silenced: held back
    ticks(services, clock, "hh")
    assert alerts(services)[-1].headline.startswith("🟢 api production recovered")
    assert "health.silenced" in services.audit.actions()  # type: ignore[attr-defined]


def test_silence_expires_and_then_a_still_down_service_is_announced(services: Services, clock: FrozenClock) -> None:
    ticks(services, clock, "dd")
    health.silence(call_as(services, "U0DEV"), alerts(services)[0].alert_id or "")
    ticks(services, clock, "fff")
    clock.advance(hours=1)
    ticks(services, clock, "f")
    assert [a.headline.split(":")[0] for a in alerts(services)] == ["🟠 api production SLOW", "🔴 api production DOWN"]


def test_silence_needs_the_deployer_role(services: Services, clock: FrozenClock) -> None:
    ticks(services, clock, "fff")
    with pytest.raises(NotPermitted, match="deployer"):
        health.silence(call_as(services, "U0VIEWER"), alerts(services)[0].alert_id or "")


def test_alert_context_gives_the_incident_what_it_needs(services: Services, clock: FrozenClock) -> None:
    ticks(services, clock, "fff")
    context = health.alert_context(call_as(services, "U0DEV"), alerts(services)[0].alert_id or "")
    assert {k: context[k] for k in ("service", "environment", "severity_hint")} == {"service": "api", "environment": "production", "severity_hint": "P0"}
    assert context["summary"] == "api production DOWN: /health/db timeout after 2000 ms (3 failures in 5 min)"


def test_alert_context_of_an_unknown_alert_is_not_found(services: Services) -> None:
    with pytest.raises(NotFound):
        health.alert_context(call_as(services, "U0DEV"), "nope")
