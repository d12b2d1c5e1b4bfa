"""`/ops metrics <service> [environment]`: each guardrail's value now against its thresholds, and a chart.

The answer lists each guardrail (``services.<s>.environments.<e>.metrics``) read now, judged as deploy
verification judges it without a baseline: ✅ ok, ⚠️ above ``warn``, ❌ above ``critical``, ❔ unknown with the
reason. The chart shows each guardrail over the last ``prometheus.chart_window`` (1 h by default) with its
thresholds as dashed lines and the deploys and rollbacks of that window as vertical lines; it is rendered by the
``ChartImages`` port and uploaded to the channel the command ran in by the ``FileUploads`` port. A chart that
cannot be drawn or uploaded leaves the values standing and says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from bot.config.metrics import MetricGuardrail
from bot.domain.deploys import planning
from bot.domain.deploys.charts import ChartSeries, DeployMark, MetricsChart
from bot.domain.deploys.deps import DeployDeps
from bot.domain.deploys.guardrails import GuardrailReading, judge
from bot.domain.shared.commands import Args, expect
from bot.domain.shared.errors import OpsError, UsageError
from bot.domain.shared.metrics import MetricUnreadable, shown
from bot.domain.shared.policy import Actor
from bot.domain.shared.ports import Reply

USAGE = "metrics <service> [environment]"
CHART_POINTS = 120  # points per series: a step of 30 s over an hour
ICONS = {"ok": "✅", "warn": "⚠️", "critical": "❌", "unknown": "❔"}
MAX_DEPLOY_MARKS = 20


@dataclass(frozen=True)
class ShowMetrics:
    service: str
    environment: str | None = None


def parse(args: Args) -> ShowMetrics:
    words = expect(args, USAGE, required=1, optional=1)
    return ShowMetrics(words[0].lower(), words[1].lower() if len(words) > 1 else None)


@dataclass(frozen=True)
class MetricLine:
    icon: str
    name: str
    value: str
    thresholds: str
    reason: str | None


@dataclass(frozen=True)
class MetricsReport:
    template: ClassVar[str] = "deploy/metrics"
    service: str
    environment: str
    lines: list[MetricLine]
    window: str
    chart: str  # "the chart of the last 1 h is in this channel" or why there is none
    at: datetime


class MetricsView:
    """Reads the guardrails now and over the window, draws the chart and shares it."""

    def __init__(self, deps: DeployDeps) -> None:
        self._d = deps

    def show(self, command: ShowMetrics, actor: Actor) -> Reply:
        d = self._d
        name, spec, env = planning.resolve(d, command.service, command.environment)
        guardrails = spec.environments[env].metrics
        if not guardrails:
            raise UsageError(f"`{name}` has no metrics in {env}: add them under `services.{name}.environments.{env}.metrics`.")
        now = d.clock.now()
        window = d.config.prometheus.chart_seconds if d.config.prometheus else 3600.0
        start = now - timedelta(seconds=window)
        lines = [self._line(g, name, env) for g in guardrails]
        series = [self._series(g, name, env, start, now, window) for g in guardrails]
        chart = MetricsChart(f"{name} · {env}", start, now, series, self._deploys(name, env, start))
        span = _span(window)
        note = self._share(actor, chart, name, env, span)
        return Reply(MetricsReport(name, env, lines, span, note, now))

    def _line(self, guardrail: MetricGuardrail, service: str, env: str) -> MetricLine:
        reading = judge(guardrail, _read(self._d, guardrail.promql(service, env)), None)
        limits = [
            f"{word} {shown(v, guardrail.unit)}"
            for word, v in (("warn", guardrail.warn), ("critical", guardrail.critical))
            if v is not None
        ]
        return MetricLine(ICONS[reading.status], guardrail.name, reading.value_text, " · ".join(limits), _reason(reading))

    def _series(
        self, guardrail: MetricGuardrail, service: str, env: str, start: datetime, end: datetime, window: float
    ) -> ChartSeries:
        try:
            points = self._d.metrics.read_range(
                guardrail.promql(service, env), start=start, end=end, step_seconds=max(window / CHART_POINTS, 1.0)
            )
            reason = "" if points else "no points in the window"
        except MetricUnreadable as exc:
            points, reason = [], exc.reason
        points = [(t, v) for t, v in points if math.isfinite(v)]
        return ChartSeries(guardrail.name, guardrail.unit, points, guardrail.warn, guardrail.critical, reason)

    def _deploys(self, service: str, env: str, start: datetime) -> list[DeployMark]:
        with self._d.uow() as uow:
            recent = uow.deploys.history(service, env, MAX_DEPLOY_MARKS)
        marks = []
        for deploy in recent:
            at = deploy.started_at or deploy.requested_at
            if at >= start:
                label = f"rollback to {deploy.version}" if deploy.is_rollback else deploy.version
                marks.append(DeployMark(at, label, deploy.state.value == "failed"))
        return sorted(marks, key=lambda m: m.at)

    def _share(self, actor: Actor, chart: MetricsChart, service: str, env: str, span: str) -> str:
        if actor.channel_id is None:
            return "no chart: this command ran outside a channel"
        try:
            image = self._d.charts.render(chart)
            self._d.files.upload(
                channel=actor.channel_id,
                filename=f"metrics-{service}-{env}.png",
                content=image,
                title=f"{service} {env}: metrics over the last {span}",
                comment=f"📈 {service} · {env}: the last {span}, deploys marked (asked by <@{actor.user_id}>)",
            )
        except OpsError as exc:
            return f"no chart: {exc.message}"
        return f"The chart of the last {span}, deploys marked, is posted in this channel."


def _read(d: DeployDeps, query: str) -> float | MetricUnreadable:
    try:
        value = d.metrics.read(query)
    except MetricUnreadable as exc:
        return exc
    if math.isnan(value) or math.isinf(value):
        return MetricUnreadable(
            "the query gave NaN (0/0: no requests in its range?)" if math.isnan(value) else "the query gave an infinite value"
        )
    return value


def _reason(reading: GuardrailReading) -> str | None:
    if reading.status == "unknown":
        return reading.reason
    return f"above {reading.threshold}" if reading.threshold and reading.status != "ok" else None


def _span(seconds: float) -> str:
    whole = int(seconds)
    if whole % 3600 == 0:
        return f"{whole // 3600} h"
    if whole % 60 == 0:
        return f"{whole // 60} min"
    return f"{whole} s"
