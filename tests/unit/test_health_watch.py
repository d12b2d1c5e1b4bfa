"""Watch ticks with fakes: each state change announced once, with buttons, audited; ticks leave no audit rows."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.domain.health.messages import HealthAlert
from bot.domain.shared.errors import NotFound, NotPermitted
from tests.support import make_config
from tests.unit.health_fakes import World, fake_world

CHECKS = {"health": [{"url": "https://api.example.com/health/db"}]}
CONFIG = make_config(
    services={"api": {"environments": {"staging": {}, "production": CHECKS}}, "web": {"environments": {"production": CHECKS}}},
    health={
        "watches": [
            {
                "services": ["api"],
                "environments": ["production"],
                "interval": "1m",
                "failures": 3,
                "window": "5m",
                "slow_checks": 2,
                "recover_checks": 2,
            }
        ]
    },
)
TARGET = {"service": "api", "environment": "production"}


@pytest.fixture
def world() -> World:
    return fake_world(CONFIG)


def ticks(world: World, statuses: str) -> None:
    for letter in statuses:
        world.probe.status[("api", "production")] = {"h": "healthy", "d": "degraded", "f": "failed"}[letter]
        world.watches.tick(world.actor(), TARGET)
        world.clock.advance(minutes=1)


def alerts(world: World) -> list[HealthAlert]:
    return [m for _, m in world.notifier.posts if isinstance(m, HealthAlert)]


def test_down_is_announced_once_to_the_alerts_channel_with_both_buttons(world: World) -> None:
    ticks(world, "fffff")
    [(channel, alert)] = world.notifier.posts
    assert channel == "C0ALERTS" and isinstance(alert, HealthAlert)
    assert alert.headline == "🔴 api production DOWN: /health/db timeout after 2000 ms (3 failures in 5 min)"
    assert alert.alert_id is not None


def test_recovery_is_announced_once_with_how_long_it_was_down(world: World) -> None:
    ticks(world, "ffffffffffffhhhhh")
    assert [a.headline for a in alerts(world)] == [
        "🔴 api production DOWN: /health/db timeout after 2000 ms (3 failures in 5 min)",
        "🟢 api production recovered after 11 min",
    ]
    assert alerts(world)[1].alert_id is None  # good news carries no buttons


def test_state_changes_are_audited_and_plain_ticks_are_not(world: World) -> None:
    ticks(world, "hhfffffhh")
    assert world.audited() == ["health.down", "health.recovered"]
    down = world.audit.entries[0]
    assert (down.actor, down.target, down.service, down.environment, down.source) == (
        "opsbot",
        "api/production",
        "api",
        "production",
        "job",
    )


def test_slow_checks_warn_once(world: World) -> None:
    ticks(world, "ddddhh")
    assert [a.headline for a in alerts(world)] == [
        "🟠 api production SLOW: /health/db slow: 800 ms (warning at 500 ms) (2 checks in a row)",
        "🟢 api production latency back to normal after 4 min",
    ]


def test_each_tick_first_schedules_the_next_one_interval_later_under_one_key(world: World) -> None:
    start = world.clock.now()
    ticks(world, "h")
    [(at, name, payload, key)] = world.jobs.scheduled
    assert (at - start, name, payload, key) == (timedelta(minutes=1), "health.watch_tick", TARGET, "health-watch:api:production")


def test_a_watch_removed_from_the_config_ends_its_chain() -> None:
    world = fake_world(make_config(services={"api": {"environments": {"production": CHECKS}}}))
    world.watches.tick(world.actor(), TARGET)
    assert world.jobs.scheduled == [] and world.probe.calls == []


def test_a_tick_while_another_replica_holds_the_lease_checks_nothing(world: World) -> None:
    world.store.lease("api/production", 30)
    world.watches.tick(world.actor(), TARGET)
    assert world.probe.calls == []


def test_a_second_chain_ticking_right_after_the_first_is_skipped(world: World) -> None:
    world.watches.tick(world.actor(), TARGET)
    world.clock.advance(seconds=5)
    world.watches.tick(world.actor(), TARGET)
    assert len(world.probe.calls) == 1


def test_ensure_starts_every_watch_and_its_own_supervisor(world: World) -> None:
    world.watches.ensure_watches(world.actor(), {})
    assert [key for *_, key in world.jobs.scheduled] == ["health-watch:api:production", "health:supervisor"]


def test_a_failed_post_is_retried_on_the_next_tick(world: World) -> None:
    world.notifier.failing = True
    ticks(world, "fff")
    world.notifier.failing = False
    ticks(world, "ff")
    assert len(alerts(world)) == 1 and "DOWN" in alerts(world)[0].headline


def test_silence_holds_back_the_next_down_but_recovery_still_comes(world: World) -> None:
    ticks(world, "dd")
    alert_id = alerts(world)[0].alert_id
    assert alert_id is not None
    reply = world.health.silence(world.actor("U0DEV"), alert_id)
    assert reply.visibility == "in_channel"
    ticks(world, "fffff")
    assert len(alerts(world)) == 1  # DOWN while silenced: held back
    ticks(world, "hh")
    assert alerts(world)[-1].headline == "🟢 api production recovered after 7 min"
    assert "health.silenced" in world.audited()


def test_silence_expires_and_then_a_still_down_service_is_announced(world: World) -> None:
    ticks(world, "dd")
    world.health.silence(world.actor("U0DEV"), alerts(world)[0].alert_id or "")
    ticks(world, "fff")
    world.clock.advance(hours=1)
    ticks(world, "f")
    assert [a.headline.split(":")[0] for a in alerts(world)] == ["🟠 api production SLOW", "🔴 api production DOWN"]


def test_silence_needs_the_deployer_role(world: World) -> None:
    ticks(world, "fff")
    with pytest.raises(NotPermitted, match="deployer"):
        world.health.silence(world.actor("U0VIEWER"), alerts(world)[0].alert_id or "")
    assert world.store.silences == {}


def test_alert_context_gives_the_incident_what_it_needs(world: World) -> None:
    ticks(world, "fff")
    context = world.health.alert_context(alerts(world)[0].alert_id or "")
    assert {k: context[k] for k in ("service", "environment", "severity_hint")} == {
        "service": "api",
        "environment": "production",
        "severity_hint": "P0",
    }
    assert context["summary"] == "api production DOWN: /health/db timeout after 2000 ms (3 failures in 5 min)"


def test_alert_context_of_an_unknown_alert_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        world.health.alert_context("nope")
