"""One watch tick's metric rules: read each rule's metric, fold it in, and build the alerts to post.

A firing alert is stored behind an opaque id (the same kind as a DOWN alert, so the incidents family's
**Declare incident** button works on it, with the rule's severity prefilled) and carries a second button,
**Roll back the last deploy of <service>**, which the deploys family resolves from that id on the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.config import Watch
from bot.config.metric_rules import MetricRule
from bot.domain.health.deps import HealthDeps
from bot.domain.health.messages import MetricAlert
from bot.domain.health.metric_rules import RuleEvent, RuleState, guardrail_of, read_metric, step
from bot.domain.shared.metrics import shown

ALERT_KIND = "health-alert"  # the same store as DOWN alerts: one lookup serves both buttons
ALERT_TTL_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class RulePost:
    """An alert to post once the tick's state is saved; ``previous`` is put back if Slack refuses it."""

    key: str
    alert: MetricAlert
    previous: dict[str, Any]


def evaluate(
    deps: HealthDeps, service: str, environment: str, watch: Watch, stored: dict[str, dict[str, Any]], now: datetime
) -> tuple[dict[str, dict[str, Any]], list[RulePost], list[tuple[MetricRule, RuleEvent]]]:
    """(new rule states by key, alerts to post, state changes to audit) for one tick of the watch's metric rules."""
    states: dict[str, dict[str, Any]] = {}
    posts: list[RulePost] = []
    changes: list[tuple[MetricRule, RuleEvent]] = []
    for rule in watch.rules:
        guardrail = guardrail_of(deps.config, service, environment, rule)
        value, reason = read_metric(deps.metrics, guardrail, service, environment)
        before = RuleState.from_dict(stored.get(rule.key))
        after, event = step(before, rule, value, reason, now)
        if event is not None:
            unit = guardrail.unit if guardrail else "ratio"
            alert = _alert(deps, service, environment, rule, unit, event, now, before)
            if event.kind == "fire":
                after = RuleState(after.pending_since, after.firing_since, after.value, after.unknown, alert.alert_id)
            posts.append(RulePost(rule.key, alert, before.to_dict()))
            changes.append((rule, event))
        states[rule.key] = after.to_dict()
    return states, posts, changes


def _alert(
    deps: HealthDeps,
    service: str,
    environment: str,
    rule: MetricRule,
    unit: str,
    event: RuleEvent,
    now: datetime,
    before: RuleState,
) -> MetricAlert:
    value, threshold = shown(event.value, unit), shown(rule.threshold, unit)
    severity = _severity(deps, rule)
    rule_line = f"rule `{rule.text}` · {rule.metric} {rule.op} {threshold} for {human(timedelta(seconds=rule.for_seconds))}"
    if event.kind == "recover":
        headline = f"🟢 {service} {environment}: {rule.metric} back to {value} after {human(event.lasted)}"
        return MetricAlert(headline, [rule_line], None, service, now)
    held = human(now - before.pending_since) if before.pending_since else human(timedelta(seconds=rule.for_seconds))
    headline = f"🔴 {service} {environment}: {rule.metric} {value} {rule.op} {threshold} for {held} ({severity})"
    alert_id = deps.state.put(
        ALERT_KIND,
        {
            "service": service,
            "environment": environment,
            "level": "metric",
            "summary": headline.split(" ", 1)[1],
            "severity_hint": severity,
            "at": now.isoformat(),
            "checks": [rule_line],
        },
        ALERT_TTL_SECONDS,
    )
    return MetricAlert(headline, [rule_line], alert_id, service, now)


def _severity(deps: HealthDeps, rule: MetricRule) -> str:
    configured = deps.config.incidents.severity(rule.severity)
    return configured[0] if configured else rule.severity


def human(span: timedelta) -> str:
    """``12 min``, ``45 s``, ``1 h 5 min``."""
    seconds = max(int(span.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds} s"
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours} h {minutes} min" if hours and minutes else f"{hours} h" if hours else f"{minutes} min"


def rule_summary(watch: Watch, stored: dict[str, dict[str, Any]]) -> str:
    """`` · error_rate > 0.05 for 5m -> P0: firing`` for each rule, for `/ops health watches` (unknown with its reason)."""
    parts = []
    for rule in watch.rules:
        state = RuleState.from_dict(stored.get(rule.key))
        if state.firing_since is not None:
            status = "firing"
        elif state.unknown:
            status = f"unknown ({state.unknown})"
        elif state.pending_since is not None:
            status = "pending"
        elif state.value is None:
            status = "not read yet"
        else:
            status = "ok"
        parts.append(f"`{rule.text}`: {status}")
    return "".join(f" · {p}" for p in parts)
