"""Metric rules of a health watch (``error_rate > 0.05 for 5m -> P0``): a pure state machine, and one tick's reading.

A rule is **pending** from the first reading that meets it; it **fires** once it has been met at every reading for
its ``for`` window, and **recovers** at the first reading that no longer meets it (Prometheus' own alerting-rule
semantics). An unreadable metric (Prometheus unreachable, slow, a bad query, no series or several) is **unknown**:
it restarts a pending window (the rule was not seen to hold) but neither fires nor recovers a firing rule; the
reason is kept and shown by `/ops health watches`. The state lives in the watch's state, written under its lease,
so one alert and one recovery are posted however many replicas tick the watch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from bot.config import MetricGuardrail, OpsConfig
from bot.config.metric_rules import MetricRule
from bot.domain.shared.metrics import MetricsReader, MetricUnreadable


@dataclass(frozen=True)
class RuleState:
    """One metric rule of one watched service environment, as stored between ticks."""

    pending_since: datetime | None = None  # first reading of the current run of readings that met the rule
    firing_since: datetime | None = None  # when it fired (None: not firing)
    value: float | None = None  # the last value read
    unknown: str = ""  # why the last reading gave no number ("" when it did)
    alert_id: str | None = None  # the firing alert behind the buttons

    def to_dict(self) -> dict[str, Any]:
        return {
            "pending_since": _iso(self.pending_since),
            "firing_since": _iso(self.firing_since),
            "value": self.value,
            "unknown": self.unknown,
            "alert_id": self.alert_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> RuleState:
        if not data:
            return cls()
        value = data.get("value")
        return cls(
            pending_since=_dt(data.get("pending_since")),
            firing_since=_dt(data.get("firing_since")),
            value=float(value) if isinstance(value, int | float) else None,
            unknown=str(data.get("unknown", "")),
            alert_id=data.get("alert_id"),
        )


@dataclass(frozen=True)
class RuleEvent:
    """A rule fired or recovered at this reading; ``lasted`` is how long it had been firing (for a recovery)."""

    kind: Literal["fire", "recover"]
    value: float
    lasted: timedelta = timedelta(0)


def step(
    state: RuleState, rule: MetricRule, value: float | None, reason: str, now: datetime
) -> tuple[RuleState, RuleEvent | None]:
    """Fold one reading (``value``, or None with the ``reason`` it is unknown) into the rule's state."""
    if value is None:
        # Not seen to hold: a pending window starts over; a firing rule stays firing until a number says otherwise.
        return replace(state, pending_since=None, value=None, unknown=reason), None
    read = replace(state, value=value, unknown="")
    if not rule.breached(value):
        if state.firing_since is not None:
            return replace(read, pending_since=None, firing_since=None, alert_id=None), RuleEvent(
                "recover", value, now - state.firing_since
            )
        return replace(read, pending_since=None), None
    pending = state.pending_since or now
    if state.firing_since is None and now - pending >= timedelta(seconds=rule.for_seconds):
        return replace(read, pending_since=pending, firing_since=now), RuleEvent("fire", value)
    return replace(read, pending_since=pending), None


def guardrail_of(config: OpsConfig, service: str, environment: str, rule: MetricRule) -> MetricGuardrail | None:
    """The guardrail a rule names (its query and unit); None when the target does not define it."""
    metrics = config.services[service].environments[environment].metrics
    return next((m for m in metrics if m.name == rule.metric), None)


def read_metric(
    reader: MetricsReader, guardrail: MetricGuardrail | None, service: str, environment: str
) -> tuple[float | None, str]:
    """(value, "") or (None, why it is unknown): never raises for a bad reading."""
    if guardrail is None:
        return None, "the metric is not defined for this service environment"
    try:
        return reader.read(guardrail.promql(service, environment)), ""
    except MetricUnreadable as exc:
        return None, exc.reason


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _dt(text: Any) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) and text else None
