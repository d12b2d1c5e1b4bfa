"""Metric guardrails during deploy verification: read each metric, compare with its thresholds and baseline, judge.

Each round of verification reads every guardrail of the target (``services.<s>.environments.<e>.metrics``). A
reading is ``critical`` when the value is above ``critical``, or more than ``max_increase_percent`` above the
baseline; ``warn`` when above ``warn``; ``unknown`` when it could not be read (the environment's ``on_unknown``
decides whether that fails verification). Higher is worse for every guardrail.

The baseline is the same query averaged over ``baseline_window`` before the deploy started, evaluated by Prometheus
itself as a subquery at that moment: ``avg_over_time((query)[window:step])`` at ``time=<deploy start>``. One instant
query per guardrail, read once per verification; it expects one series exactly like the query does, and it works
for any query (a range query averaged here would move the whole window of samples over HTTP for the same number).
A baseline of zero (no errors before the deploy) has no percentage to rise by: only absolute thresholds apply then.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from bot.config.metrics import MetricGuardrail
from bot.domain.shared.metrics import MetricsReader, MetricUnreadable, number, shown

Status = Literal["ok", "warn", "critical", "unknown"]
PARALLEL_READS = 8  # guardrails read at once: one round costs about one query, not one per guardrail
SUBQUERY_POINTS = 30  # the baseline subquery's resolution: the window in this many steps (at least 1 s each)


@dataclass(frozen=True)
class GuardrailReading:
    """One guardrail's state after a round: value and baseline in the guardrail's unit (None when not read)."""

    name: str
    unit: str
    status: Status
    value: float | None = None
    baseline: float | None = None
    threshold: str | None = None  # the threshold crossed, for people: "critical 5 %", "the baseline +50 % (150 ms)"
    reason: str | None = None  # why it is unknown, or how the baseline was left out

    @property
    def value_text(self) -> str:
        return shown(self.value, self.unit) if self.value is not None else "unknown"

    @property
    def baseline_text(self) -> str | None:
        return shown(self.baseline, self.unit) if self.baseline is not None else None

    def line(self) -> str:
        """``error_rate 10.2 % (above critical 5 %; baseline 0.4 %)`` or ``p95 unknown (reason)``."""
        if self.status == "unknown":
            return f"{self.name} unknown ({self.reason})"
        notes = []
        if self.threshold and self.status != "ok":
            notes.append(f"above {self.threshold}")
        if self.baseline_text is not None:
            notes.append(f"baseline {self.baseline_text}")
        elif self.reason:
            notes.append(self.reason)
        return f"{self.name} {self.value_text}" + (f" ({'; '.join(notes)})" if notes else "")


def judge(
    guardrail: MetricGuardrail, value: float | MetricUnreadable, baseline: float | MetricUnreadable | None
) -> GuardrailReading:
    """The reading of ``guardrail`` for ``value`` against its thresholds and ``baseline`` (None: not needed)."""
    name, unit = guardrail.name, guardrail.unit
    if isinstance(value, MetricUnreadable):
        return GuardrailReading(name, unit, "unknown", reason=value.reason)
    base = None if baseline is None or isinstance(baseline, MetricUnreadable) else float(baseline)
    if guardrail.critical is not None and value > guardrail.critical:
        return GuardrailReading(name, unit, "critical", value, base, f"critical {shown(guardrail.critical, unit)}")
    note = None
    if guardrail.max_increase_percent is not None:
        if isinstance(baseline, MetricUnreadable):
            return GuardrailReading(name, unit, "unknown", value, reason=f"no baseline: {baseline.reason}")
        if base is not None and base > 0:
            limit = base * (1 + guardrail.max_increase_percent / 100)
            if value > limit:
                rise = f"the baseline +{number(guardrail.max_increase_percent)} % ({shown(limit, unit)})"
                return GuardrailReading(name, unit, "critical", value, base, rise)
        elif base is not None:
            note = "baseline 0: only absolute thresholds apply"
    if guardrail.warn is not None and value > guardrail.warn:
        return GuardrailReading(name, unit, "warn", value, base, f"warn {shown(guardrail.warn, unit)}", note)
    return GuardrailReading(name, unit, "ok", value, base, reason=note)


def baseline_query(query: str, window_seconds: float) -> str:
    """``query`` averaged over the ``window_seconds`` before the evaluation time (a PromQL subquery)."""
    window = max(1, round(window_seconds))
    step = max(1, window // SUBQUERY_POINTS)
    return f"avg_over_time(({query})[{window}s:{step}s])"


def _read(reader: MetricsReader, query: str, at: datetime | None = None) -> float | MetricUnreadable:
    try:
        value = reader.read(query, at=at)
    except MetricUnreadable as exc:
        return exc
    if math.isnan(value):
        return MetricUnreadable("the query gave NaN (0/0: no requests in its range?)")
    if math.isinf(value):
        return MetricUnreadable("the query gave an infinite value (a division by zero?)")
    return value


class GuardrailWatch:
    """The guardrails of one deploy's target, read round after round; baselines read once, at the first round."""

    def __init__(
        self,
        reader: MetricsReader,
        guardrails: Sequence[MetricGuardrail],
        service: str,
        environment: str,
        started_at: datetime | None,
    ) -> None:
        self._reader = reader
        self._guardrails = list(guardrails)
        self._queries = [g.promql(service, environment) for g in self._guardrails]
        self._started_at = started_at
        self._baselines: list[float | MetricUnreadable | None] | None = None
        self.latest: list[GuardrailReading] = []

    def __bool__(self) -> bool:
        return bool(self._guardrails)

    def _read_all(self, asks: list[tuple[str, datetime | None] | None]) -> list[float | MetricUnreadable | None]:
        """Each (query, time) read at once; None asks for nothing."""
        wanted = [(i, ask) for i, ask in enumerate(asks) if ask is not None]
        found: list[float | MetricUnreadable | None] = [None] * len(asks)
        if len(wanted) == 1:
            i, (query, at) = wanted[0]
            found[i] = _read(self._reader, query, at)
        elif wanted:
            with ThreadPoolExecutor(max_workers=min(PARALLEL_READS, len(wanted)), thread_name_prefix="guardrail") as pool:
                results = pool.map(lambda item: _read(self._reader, item[1][0], item[1][1]), wanted)
                for (i, _), value in zip(wanted, results, strict=True):
                    found[i] = value
        return found

    def _baseline_asks(self) -> list[tuple[str, datetime | None] | None]:
        return [
            (baseline_query(query, guardrail.baseline_seconds), self._started_at)
            if guardrail.max_increase_percent is not None and self._started_at is not None
            else None
            for guardrail, query in zip(self._guardrails, self._queries, strict=True)
        ]

    def round(self) -> list[GuardrailReading]:
        """Read every guardrail now, all at once (and the baselines with them the first time); kept in ``latest``."""
        count = len(self._guardrails)
        current: list[tuple[str, datetime | None] | None] = [(query, None) for query in self._queries]
        if self._baselines is None:
            found = self._read_all(current + self._baseline_asks())
            values, baselines = found[:count], found[count:]
            self._baselines = [
                MetricUnreadable("the deploy's start time is not known")
                if guardrail.max_increase_percent is not None and self._started_at is None
                else baseline
                for guardrail, baseline in zip(self._guardrails, baselines, strict=True)
            ]
        else:
            values = self._read_all(current)
        self.latest = []
        for guardrail, value, baseline in zip(self._guardrails, values, self._baselines, strict=True):
            assert value is not None
            self.latest.append(judge(guardrail, value, baseline))
        return self.latest


def problem(readings: Sequence[GuardrailReading], on_unknown: str) -> str | None:
    """What fails verification in ``readings``: a critical reading, or an unknown one when ``on_unknown`` is ``fail``."""
    critical = [r for r in readings if r.status == "critical"]
    if critical:
        return "; ".join(f"metric {r.line()}" for r in critical)
    unknown = [r for r in readings if r.status == "unknown"]
    if unknown and on_unknown == "fail":
        return "; ".join(f"metric {r.line()}" for r in unknown) + " (on_unknown: fail)"
    return None


def summary(readings: Sequence[GuardrailReading]) -> str:
    """``error_rate 0.4 % (baseline 0.3 %), latency_p95 120 ms``: every guardrail's last reading."""
    return ", ".join(r.line() for r in readings)
