"""`prometheus` (where guardrail queries go) and the per-environment `metrics` guardrails (docs/metrics.md).

A guardrail is a PromQL query that must return one number, with thresholds: ``warn`` and ``critical`` are
absolute values in the query's ``unit``; ``max_increase_percent`` compares the value with the same query averaged
over ``baseline_window`` before the deploy started. Higher is worse for every guardrail (error rates, latencies).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator, model_validator

from bot.config.common import ENV_VAR, Strict
from bot.config.durations import parse_duration

PLACEHOLDERS = ("{service}", "{environment}")
METRIC_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
MAX_BASELINE = timedelta(days=7)


class Prometheus(Strict):
    """The Prometheus server guardrails read from (HTTP API ``/api/v1/query``)."""

    url: str = Field(default="http://127.0.0.1:9090", pattern=r"^https?://[^\s]+$")
    token_env: str | None = None  # a bearer token read from this variable, when set
    timeout_ms: int = Field(default=2000, ge=1, le=60_000)
    chart_window: str = "1h"  # how far back `/ops metrics` charts (`90s` in tests, at most 7d)

    @field_validator("chart_window")
    @classmethod
    def _chart_window(cls, value: str) -> str:
        _seconds(value, MAX_BASELINE)
        return value

    @property
    def chart_seconds(self) -> float:
        return _seconds(self.chart_window, MAX_BASELINE)

    @field_validator("token_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not ENV_VAR.match(value):
            raise ValueError(f"{value!r} is not an environment variable name")
        return value


def _seconds(text: str, maximum: timedelta) -> float:
    try:
        return parse_duration(text, maximum=maximum).total_seconds()
    except ValueError as exc:
        raise ValueError(str(exc).replace("`", "")) from None


class MetricGuardrail(Strict):
    """One metric a deploy must keep within bounds while it is verified."""

    name: str
    query: str = Field(min_length=1, max_length=4000)
    unit: Literal["ratio", "percent", "ms", "s"] = "ratio"
    warn: float | None = Field(default=None, ge=0)
    critical: float | None = Field(default=None, ge=0)
    max_increase_percent: float | None = Field(default=None, gt=0)
    baseline_window: str = "30m"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not METRIC_NAME.match(value):
            raise ValueError(f"{value!r} is not a metric name (lowercase letters, digits and '_', like error_rate)")
        return value

    @field_validator("baseline_window")
    @classmethod
    def _window(cls, value: str) -> str:
        _seconds(value, MAX_BASELINE)
        return value

    @model_validator(mode="after")
    def _thresholds(self) -> MetricGuardrail:
        if self.warn is None and self.critical is None and self.max_increase_percent is None:
            raise ValueError("give at least one of warn, critical or max_increase_percent")
        if self.warn is not None and self.critical is not None and self.critical < self.warn:
            raise ValueError(f"critical ({self.critical}) must not be below warn ({self.warn})")
        return self

    @property
    def baseline_seconds(self) -> float:
        return _seconds(self.baseline_window, MAX_BASELINE)

    def promql(self, service: str, environment: str) -> str:
        """The query with ``{service}`` and ``{environment}`` filled in, escaped for a PromQL double-quoted string."""
        return self.query.replace("{service}", promql_escape(service)).replace("{environment}", promql_escape(environment))


def promql_escape(value: str) -> str:
    """``value`` safe inside a PromQL double-quoted label value (backslash, quote and newline escaped)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def unique_names(guardrails: list[MetricGuardrail]) -> list[MetricGuardrail]:
    names = [g.name for g in guardrails]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"each metric is named once; given more than once: {', '.join(twice)}")
    return guardrails
