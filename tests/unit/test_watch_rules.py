"""The watch rules: N failures in M minutes → DOWN, K slow checks → WARNING, hysteresis on the way back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.domain.health.rules import Level, Rules, WatchState, observe, pending_announcement

RULES = Rules(failures=3, window=timedelta(minutes=5), slow_checks=3, recover_checks=2)
START = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


def run(
    statuses: str, every: timedelta = timedelta(minutes=1), state: WatchState | None = None
) -> tuple[WatchState, list[tuple[Level, Level]]]:
    """Feed checks (h = healthy, d = degraded, f = failed) one interval apart; the level changes seen."""
    state = state or WatchState()
    changes = []
    now = START if state.last_tick is None else state.last_tick
    for letter in statuses:
        now += every
        state, change = observe(state, {"h": "healthy", "d": "degraded", "f": "failed"}[letter], "/health/db timeout", now, RULES)
        if change:
            changes.append((change.before, change.after))
    return state, changes


def test_three_failures_within_five_minutes_is_down() -> None:
    state, changes = run("ffhf")
    assert changes == [(Level.OK, Level.DOWN)]
    assert state.level is Level.DOWN and len(state.failures) == 3


def test_failures_spread_wider_than_the_window_never_add_up() -> None:
    _, changes = run("fhhfhhfhhf", every=timedelta(minutes=1))
    assert changes == []


def test_two_failures_are_not_enough() -> None:
    state, changes = run("ff")
    assert changes == [] and state.level is Level.OK


def test_one_healthy_answer_during_an_outage_does_not_recover_it() -> None:
    state, changes = run("fffhf")
    assert changes == [(Level.OK, Level.DOWN)] and state.level is Level.DOWN


def test_two_healthy_checks_in_a_row_recover_and_clear_the_failure_count() -> None:
    state, changes = run("fffhh")
    assert changes == [(Level.OK, Level.DOWN), (Level.DOWN, Level.OK)]
    assert state.failures == ()
    _, again = run("ff", state=state)
    assert again == []  # the outage's failures do not count towards the next one


def test_three_slow_checks_in_a_row_warn_and_two_fast_ones_clear_it() -> None:
    _, changes = run("dddhh")
    assert changes == [(Level.OK, Level.WARNING), (Level.WARNING, Level.OK)]


def test_slow_checks_interrupted_by_a_fast_one_do_not_warn() -> None:
    _, changes = run("ddhdd")
    assert changes == []


def test_a_warning_that_starts_failing_goes_down() -> None:
    _, changes = run("dddfff")
    assert changes == [(Level.OK, Level.WARNING), (Level.WARNING, Level.DOWN)]


def test_down_that_answers_slowly_again_becomes_a_warning() -> None:
    _, changes = run("fffddd")
    assert changes == [(Level.OK, Level.DOWN), (Level.DOWN, Level.WARNING)]


def test_the_change_says_how_long_the_previous_level_lasted() -> None:
    state, _ = run("fff")
    state, change = observe(state, "healthy", "", START + timedelta(minutes=4), RULES)
    state, change = observe(state, "healthy", "", START + timedelta(minutes=15), RULES)
    assert change is not None and change.lasted == timedelta(minutes=12)


def test_a_silence_holds_back_bad_news_but_not_good_news() -> None:
    down = WatchState(level=Level.DOWN, announced=Level.OK)
    recovered = WatchState(level=Level.OK, announced=Level.DOWN)
    assert pending_announcement(down, silenced=False) == (Level.OK, Level.DOWN)
    assert pending_announcement(down, silenced=True) is None
    assert pending_announcement(recovered, silenced=True) == (Level.DOWN, Level.OK)
    assert pending_announcement(WatchState(level=Level.DOWN, announced=Level.DOWN), silenced=False) is None


def test_state_survives_a_round_trip_through_storage() -> None:
    state, _ = run("fffd")
    assert WatchState.from_dict(state.to_dict()) == state
    assert WatchState.from_dict(None) == WatchState()
