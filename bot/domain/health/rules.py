"""The runbook's alerting rules as a pure state machine: no clock, no I/O, every case unit-tested.

- fails ``failures`` times within ``window`` → DOWN (the runbook's "3 times in 5 minutes → P0");
- over the warning latency for ``slow_checks`` consecutive checks → WARNING;
- back to OK only after ``recover_checks`` consecutive healthy checks (hysteresis: one good answer
  in the middle of an outage neither recovers it nor resets the failure count).

``level`` is what the service is; ``announced`` is what the alerts channel was last told. They differ
only while a change waits to be announced (a silence holds bad news back; good news always goes).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.config import Watch


class Level(StrEnum):
    OK = "ok"
    WARNING = "warning"
    DOWN = "down"


SEVERITY = {Level.OK: 0, Level.WARNING: 1, Level.DOWN: 2}


@dataclass(frozen=True)
class WatchState:
    """One watched service in one environment, as stored between ticks."""

    level: Level = Level.OK
    since: datetime | None = None  # when ``level`` began
    announced: Level = Level.OK
    announced_since: datetime | None = None  # when the announced level began (for "recovered after 12 min")
    failures: tuple[datetime, ...] = ()  # failed checks still inside the window
    slow_streak: int = 0
    ok_streak: int = 0
    ticks: int = 0
    last_tick: datetime | None = None
    reason: str = ""  # why the last non-healthy check was not healthy
    alert_id: str | None = None  # the alert of the current bad episode (for the buttons)
    fence: int = 0  # the lease that wrote this state
    metric_rules: dict[str, dict[str, Any]] = field(default_factory=dict)  # RuleState of each metric rule, by key

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level.value,
            "since": _iso(self.since),
            "announced": self.announced.value,
            "announced_since": _iso(self.announced_since),
            "failures": [_iso(f) for f in self.failures],
            "slow_streak": self.slow_streak,
            "ok_streak": self.ok_streak,
            "ticks": self.ticks,
            "last_tick": _iso(self.last_tick),
            "reason": self.reason,
            "alert_id": self.alert_id,
            "fence": self.fence,
            "metric_rules": self.metric_rules,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> WatchState:
        if not data:
            return cls()
        return cls(
            level=Level(data.get("level", "ok")),
            since=_dt(data.get("since")),
            announced=Level(data.get("announced", "ok")),
            announced_since=_dt(data.get("announced_since")),
            failures=tuple(d for d in map(_dt, data.get("failures", [])) if d),
            slow_streak=int(data.get("slow_streak", 0)),
            ok_streak=int(data.get("ok_streak", 0)),
            ticks=int(data.get("ticks", 0)),
            last_tick=_dt(data.get("last_tick")),
            reason=str(data.get("reason", "")),
            alert_id=data.get("alert_id"),
            fence=int(data.get("fence", 0)),
            metric_rules=dict(data.get("metric_rules") or {}),
        )


@dataclass(frozen=True)
class Rules:
    failures: int
    window: timedelta
    slow_checks: int
    recover_checks: int

    @classmethod
    def of(cls, watch: Watch) -> Rules:
        return cls(watch.failures, timedelta(seconds=watch.window_seconds), watch.slow_checks, watch.recover_checks)


@dataclass(frozen=True)
class Change:
    """The service changed level; ``lasted`` is how long it had been at ``before``."""

    before: Level
    after: Level
    reason: str
    lasted: timedelta = field(default=timedelta(0))


def observe(state: WatchState, status: str, reason: str, now: datetime, rules: Rules) -> tuple[WatchState, Change | None]:
    """Fold one check result (healthy / degraded / failed) into the state; the level change it causes, if any."""
    failures = tuple(f for f in state.failures if now - f < rules.window)
    slow, ok = state.slow_streak, state.ok_streak
    if status == "failed":
        failures, slow, ok = (*failures, now), 0, 0
    elif status == "degraded":
        slow, ok = slow + 1, 0
    else:
        slow, ok = 0, ok + 1
    level = _next_level(state.level, len(failures), slow, ok, rules)
    new = replace(
        state,
        failures=failures,
        slow_streak=slow,
        ok_streak=ok,
        ticks=state.ticks + 1,
        last_tick=now,
        reason=reason if status != "healthy" else state.reason,
    )
    if level == state.level:
        return new, None
    change = Change(state.level, level, new.reason, now - state.since if state.since else timedelta(0))
    if level is Level.OK:
        new = replace(new, failures=())  # recovered: an old failure must not count towards the next outage
    return replace(new, level=level, since=now), change


def _next_level(level: Level, failures: int, slow: int, ok: int, rules: Rules) -> Level:
    if failures >= rules.failures and level is not Level.DOWN:
        return Level.DOWN
    if level is Level.OK:
        return Level.WARNING if slow >= rules.slow_checks else Level.OK
    if ok >= rules.recover_checks:
        return Level.OK
    if level is Level.DOWN and slow >= max(rules.slow_checks, rules.recover_checks):
        return Level.WARNING  # answering again, but still slow
    return level


def pending_announcement(state: WatchState, silenced: bool) -> tuple[Level, Level] | None:
    """(told, now) when the channel should hear of a change; a silence holds back bad news only."""
    if state.level == state.announced:
        return None
    worse = SEVERITY[state.level] > SEVERITY[state.announced]
    if worse and silenced:
        return None
    return state.announced, state.level


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _dt(text: Any) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) and text else None
