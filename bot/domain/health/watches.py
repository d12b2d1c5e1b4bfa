"""Background health watches: one self-rescheduling job per watched service and environment.

Exactly one place at a time: the job queue runs each job on one worker, every tick first takes the
watch's lease, and the store accepts the new state only while that lease still holds (fencing), so
a replica that stalled past its lease cannot announce over a newer one. State lives in the shared
store, so a restart neither forgets an outage nor announces it twice. Ticks leave no audit rows;
the state changes they find do (``health.down``, ``health.warning``, ``health.recovered``).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from bot.config import Watch
from bot.domain.health.deps import HealthDeps
from bot.domain.health.messages import HealthAlert
from bot.domain.health.metric_alerts import ALERT_KIND, ALERT_TTL_SECONDS, RulePost, evaluate
from bot.domain.health.model import HealthReport
from bot.domain.health.rules import Change, Level, Rules, WatchState, observe, pending_announcement
from bot.domain.locks.ports import Lease
from bot.domain.shared.audit import record_quietly
from bot.domain.shared.changes import what_changed
from bot.domain.shared.errors import OpsError
from bot.domain.shared.policy import Actor
from bot.domain.shared.ports import AuditEntry

log = logging.getLogger("opsbot.health.watch")
TICK_JOB = "health.watch_tick"
ENSURE_JOB = "health.ensure_watches"
SUPERVISE_EVERY = timedelta(minutes=5)
ICONS = {Level.OK: "🟢", Level.WARNING: "🟠", Level.DOWN: "🔴"}
SEVERITY_HINT = {Level.DOWN: "P0", Level.WARNING: "P2"}
INCIDENT_BUTTON = "incident_declare_from_alert"  # handled by the incidents family, never here


def watch_key(service: str, environment: str) -> str:
    return f"{service}/{environment}"


def chain_key(service: str, environment: str) -> str:
    """The job key of a watch's pending tick: at most one is ever pending."""
    return f"health-watch:{service}:{environment}"


class HealthWatches:
    """The watch jobs: the supervisor that keeps one tick pending per watch, and the tick itself."""

    def __init__(self, deps: HealthDeps) -> None:
        self._d = deps

    def ensure_watches(self, actor: Actor, payload: dict[str, Any]) -> None:
        """Start every configured watch that has no pending tick; run at worker start and every few minutes."""
        jobs, now = self._d.jobs, self._d.clock.now()
        watched = self._d.config.watched()
        if not watched:
            return  # nothing to supervise (the config is read at start: a new watch needs a restart anyway)
        for service, environment in watched:
            jobs.schedule(now, TICK_JOB, {"service": service, "environment": environment}, key=chain_key(service, environment))
        jobs.schedule(now + SUPERVISE_EVERY, ENSURE_JOB, {}, key="health:supervisor")

    def tick(self, actor: Actor, payload: dict[str, Any]) -> None:
        """One check of one watch: schedule the next, check, fold in the rules, record and announce changes."""
        service, environment = str(payload.get("service")), str(payload.get("environment"))
        watch = self._d.config.watched().get((service, environment))
        if watch is None:
            return  # no longer watched: the chain ends here
        now = self._d.clock.now()
        # The successor first: a crash in the middle of this tick must not end the watch.
        self._d.jobs.schedule(
            now + timedelta(seconds=watch.interval_seconds), TICK_JOB, payload, key=chain_key(service, environment)
        )
        store = self._d.watches
        key = watch_key(service, environment)
        lease = store.lease(key, self._lease_seconds(service, environment))
        if lease is None:
            return  # another replica is checking this watch right now
        try:
            state = WatchState.from_dict(store.load(key))
            if state.last_tick and now - state.last_tick < timedelta(seconds=watch.interval_seconds / 2):
                return  # a second chain (a restart raced the supervisor): the first one already checked
            self._tick(actor, lease, (service, environment), watch, state, now)
        finally:
            store.release(lease)

    def _tick(self, actor: Actor, lease: Lease, target: tuple[str, str], watch: Watch, state: WatchState, now: datetime) -> None:
        service, environment = target
        key = watch_key(service, environment)
        store = self._d.watches
        change: Change | None = None
        alert: HealthAlert | None = None
        state = replace(state, fence=lease.fence)
        told = state
        if self._d.config.services[service].environments[environment].health:  # a watch of metric rules only has none
            report = self._d.probe.check(service, environment)
            was = state.level
            state, change = observe(state, report.status, worst_reason(report), now, Rules.of(watch))
            state = replace(state, fence=lease.fence)
            silence = store.silence_of(key)
            due = pending_announcement(state, silenced=silence is not None and silence[0] > now)
            told = state
            if due is not None:
                alert, told = self._announcement(service, environment, watch, state, due, report, now, was)
        rule_states, rule_posts, rule_changes = evaluate(self._d, service, environment, watch, state.metric_rules, now)
        told = replace(told, metric_rules=rule_states)
        if not store.save(lease, told.to_dict()):
            log.warning("health watch %s: lease lost before saving; a newer tick owns it", key)
            return
        if change is not None:
            self._audit_change(actor, service, environment, change, announced=alert is not None)
        for rule, event in rule_changes:
            self._audit_rule(actor, service, environment, rule.text, event.kind, event.value)
        told = self._post_rules(lease, told, rule_posts)
        if alert is not None:
            try:
                self._d.notifier.post(self._d.config.channels.alerts, alert)
            except OpsError as exc:
                # Not announced: put the old announcement back so the next tick tries again.
                log.error("health watch %s: could not post the alert (%s); will retry", key, exc.message)
                store.save(lease, replace(told, announced=state.announced, announced_since=state.announced_since).to_dict())

    def _post_rules(self, lease: Lease, told: WatchState, posts: list[RulePost]) -> WatchState:
        """Post each metric rule's alert; one Slack refuses is put back in the state so the next tick tries again."""
        for post in posts:
            try:
                self._d.notifier.post(self._d.config.channels.alerts, post.alert)
            except OpsError as exc:
                log.error("health watch %s: could not post a metric alert (%s); will retry", lease.name, exc.message)
                told = replace(told, metric_rules={**told.metric_rules, post.key: post.previous})
                self._d.watches.save(lease, told.to_dict())
        return told

    def _audit_rule(self, actor: Actor, service: str, environment: str, rule: str, kind: str, value: float) -> None:
        record_quietly(
            self._d.audit,
            AuditEntry(
                actor=actor.user_id,
                action="health.metric_fired" if kind == "fire" else "health.metric_recovered",
                outcome="ok",
                target=watch_key(service, environment),
                params={"rule": rule[:200], "value": value},
                source="job",
                service=service,
                environment=environment,
            ),
        )

    def _announcement(
        self,
        service: str,
        environment: str,
        watch: Watch,
        state: WatchState,
        due: tuple[Level, Level],
        report: HealthReport,
        now: datetime,
        was: Level,
    ) -> tuple[HealthAlert, WatchState]:
        told, level = due
        # A service that went down during a silence recovers, even if the channel last heard "slow".
        headline = headline_of(service, environment, Level.DOWN if was is Level.DOWN else told, level, state, watch, now)
        alert_id = None
        if level is not Level.OK:
            alert_id = self._d.state.put(
                ALERT_KIND,
                {
                    "service": service,
                    "environment": environment,
                    "level": level.value,
                    "summary": headline.split(" ", 1)[1],
                    "severity_hint": SEVERITY_HINT[level],
                    "at": now.isoformat(),
                    "checks": check_lines(report),
                },
                ALERT_TTL_SECONDS,
            )
        changed = None
        if level is Level.DOWN:  # what changed in the service is the first question of whoever looks
            changed = what_changed(self._d.recent_changes, [service], now, self._d.config.incidents.what_changed_hours)
        alert = HealthAlert(headline, check_lines(report), alert_id, rule_text(watch), now, changed)
        return alert, replace(state, announced=level, announced_since=now, alert_id=alert_id or state.alert_id)

    def _audit_change(self, actor: Actor, service: str, environment: str, change: Change, *, announced: bool) -> None:
        action = {Level.DOWN: "health.down", Level.WARNING: "health.warning", Level.OK: "health.recovered"}[change.after]
        record_quietly(
            self._d.audit,
            AuditEntry(
                actor=actor.user_id,
                action=action,
                outcome="ok",
                target=watch_key(service, environment),
                params={
                    "from": change.before.value,
                    "reason": change.reason[:300],
                    "announced": announced,
                    "after_seconds": int(change.lasted.total_seconds()),
                },
                source="job",
                service=service,
                environment=environment,
            ),
        )

    def _lease_seconds(self, service: str, environment: str) -> float:
        """Long enough for the slowest possible check: every request timing out, in waves of the concurrency cap."""
        config = self._d.config
        spec = config.services[service].environments[environment]
        timeouts = [c.timeout_ms for c in spec.health] + ([spec.version_timeout_ms] if spec.version_url else [])
        waves = -(-len(timeouts) // config.health.concurrency)
        rules = len(config.watched()[(service, environment)].metric_rules)
        reads = rules * (config.prometheus.timeout_ms if config.prometheus else 0) / 1000  # metric rules read one by one
        return waves * max(timeouts, default=0) / 1000 + reads + 30  # no timeouts: a watch of metric rules only


def headline_of(service: str, environment: str, told: Level, level: Level, state: WatchState, watch: Watch, now: datetime) -> str:
    """The one line people read in the alerts channel."""
    name = f"{ICONS[level]} {service} {environment}"
    lasted = human(now - state.announced_since) if state.announced_since else "a while"
    if level is Level.DOWN:
        return f"{name} DOWN: {state.reason} ({len(state.failures)} failures in {human(timedelta(seconds=watch.window_seconds))})"
    if level is Level.WARNING:
        if told is Level.DOWN:
            return f"{name} answering again but slow: {state.reason}"
        return f"{name} SLOW: {state.reason} ({state.slow_streak} checks in a row)"
    if told is Level.DOWN:
        return f"{name} recovered after {lasted}"
    return f"{name} latency back to normal after {lasted}"


def worst_reason(report: HealthReport) -> str:
    """``/health/db timeout after 2000 ms``: the first failed check, else the first slow one."""
    for status in ("failed", "degraded"):
        for check in report.checks:
            if check.status == status:
                return f"{check.name} {check.reason or status}"
    return ""


def check_lines(report: HealthReport) -> list[str]:
    marks = {"healthy": "✅", "degraded": "⚠️", "failed": "❌"}
    return [
        f"{marks[c.status]} {c.name}"
        + (f" {c.latency_ms:.0f} ms" if c.latency_ms is not None else "")
        + (f": {c.reason}" if c.reason else "")
        for c in report.checks[:15]
    ]


def rule_text(watch: Watch) -> str:
    return (
        f"every {human(timedelta(seconds=watch.interval_seconds))} · down after {watch.failures} failures in "
        f"{human(timedelta(seconds=watch.window_seconds))} · slow after {watch.slow_checks} slow checks · "
        f"recovered after {watch.recover_checks} healthy checks"
    )


def human(span: timedelta) -> str:
    """``12 min``, ``45 s``, ``1 h 5 min``."""
    seconds = max(int(span.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds} s"
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours} h {minutes} min" if hours and minutes else f"{hours} h" if hours else f"{minutes} min"
