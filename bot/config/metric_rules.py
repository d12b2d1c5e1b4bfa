"""Metric rules of a health watch, in the runbook's form: ``error_rate > 0.05 for 5m -> P0`` (docs/metrics.md).

The metric is a guardrail already defined under ``services.<svc>.environments.<env>.metrics`` (by name: its query
and unit come from there); the threshold is in that unit (a ``ratio`` of 0.05 is 5 %); ``for`` is how long the
comparison must hold at every reading before the alert fires (seconds upwards, at most a day); the severity is an
incident severity (``incidents.severities``), prefilled in the alert's Declare incident form.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta

from bot.config.durations import parse_duration

MAX_FOR = timedelta(days=1)
OPERATORS = (">=", "<=", ">", "<")
RULE = re.compile(
    r"^\s*(?P<metric>[a-z][a-z0-9_]{0,62})\s*(?P<op>>=|<=|>|<)\s*(?P<threshold>-?[0-9]+(?:\.[0-9]+)?(?:e-?[0-9]+)?)"
    r"\s+for\s+(?P<for>[0-9a-z]+)\s*(?:->|→)\s*(?P<severity>[A-Za-z0-9]{1,20})\s*$"
)
EXAMPLE = "error_rate > 0.05 for 5m -> P0"


@dataclass(frozen=True)
class MetricRule:
    """One parsed rule: ``metric op threshold`` must hold for ``for_seconds`` at every reading to fire ``severity``."""

    text: str
    metric: str
    op: str
    threshold: float
    for_seconds: int
    severity: str

    def breached(self, value: float) -> bool:
        """Whether ``value`` (in the metric's unit) meets the rule's comparison."""
        if self.op == ">":
            return value > self.threshold
        if self.op == ">=":
            return value >= self.threshold
        if self.op == "<":
            return value < self.threshold
        return value <= self.threshold

    @property
    def key(self) -> str:
        """The rule's identity in the watch state: the same metric, comparison and window are the same rule."""
        return f"{self.metric}{self.op}{self.threshold:g}/{self.for_seconds}"


def parse_rule(text: str) -> MetricRule:
    """``"error_rate > 0.05 for 5m -> P0"`` → MetricRule; raises ValueError saying what is wrong, with an example."""
    found = RULE.match(text)
    if found is None:
        shown = text if len(text) <= 80 else text[:80] + "…"
        raise ValueError(
            f"{shown!r} is not a metric rule like {EXAMPLE!r} (a guardrail's name, one of {' '.join(OPERATORS)}, "
            "a number in the metric's unit, `for` a duration, `->` a severity)"
        )
    threshold = float(found["threshold"])
    if not math.isfinite(threshold):
        raise ValueError(f"{text!r}: the threshold must be a finite number")
    try:
        window = parse_duration(found["for"], maximum=MAX_FOR)
    except ValueError as exc:
        raise ValueError(f"{text!r}: for {str(exc).replace('`', '')}") from None
    return MetricRule(
        text=" ".join(text.split()).replace("→", "->"),
        metric=found["metric"],
        op=found["op"],
        threshold=threshold,
        for_seconds=int(window.total_seconds()),
        severity=found["severity"],
    )
