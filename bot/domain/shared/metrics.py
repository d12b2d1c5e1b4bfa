"""The port to a metrics store (Prometheus): one number for one query, or the reason there is none."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class MetricUnreadable(Exception):
    """A query gave no single number: the store is unreachable or slow, the query is invalid, it returned no series
    or several. ``reason`` says which, in words for the announcement (never a secret)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MetricsReader(Protocol):
    def read(self, query: str, *, at: datetime | None = None) -> float:
        """The single value ``query`` evaluates to at ``at`` (now when None); raises MetricUnreadable."""
        ...

    def read_range(self, query: str, *, start: datetime, end: datetime, step_seconds: float) -> list[tuple[datetime, float]]:
        """The one series ``query`` gives from ``start`` to ``end``, a point every ``step_seconds`` (NaN points left
        out); raises MetricUnreadable like ``read`` (no series, several series …)."""
        ...

    def close(self) -> None:
        """Let go of connections the reader holds (at shutdown); reading again afterwards is not supported."""
        ...


class NoMetricsStore:
    """The reader when no `prometheus:` section is configured: every read is unreadable, saying so."""

    def read(self, query: str, *, at: datetime | None = None) -> float:
        raise MetricUnreadable("no `prometheus:` section is configured")

    def read_range(self, query: str, *, start: datetime, end: datetime, step_seconds: float) -> list[tuple[datetime, float]]:
        raise MetricUnreadable("no `prometheus:` section is configured")

    def close(self) -> None:
        """Nothing to let go of."""


def number(value: float) -> str:
    """Three significant figures or whole numbers, never scientific notation: ``812``, ``10.2``, ``0.41``."""
    size = abs(value)
    digits = 0 if size >= 100 else 1 if size >= 10 else 2 if size >= 0.1 else 4
    text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def shown(value: float, unit: str) -> str:
    """A value in its unit for people: a ``ratio`` is shown as a percentage (0.102 → ``10.2 %``)."""
    if unit == "ratio":
        return f"{number(value * 100)} %"
    if unit == "percent":
        return f"{number(value)} %"
    return f"{number(value)} {unit}"
