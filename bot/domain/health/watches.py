"""Background health watches: one self-rescheduling job per watched service and environment.

Exactly one place at a time: the job queue runs each job on one worker, every tick first takes the
watch's lease, and the store accepts the new state only while that lease still holds (fencing), so
a replica that stalled past its lease cannot announce over a newer one. State lives in the shared
store, so a restart neither forgets an outage nor announces it twice. Ticks leave no audit rows;
the state changes they find do (``health.down``, ``health.warning``, ``health.recovered``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, ClassVar

from bot.config import Watch
from bot.domain.shared.context import Call
from bot.domain.shared.errors import NotFound, OpsError, Unavailable
from bot.domain.shared.policy import Role
from bot.domain.shared.ports import AuditEntry, HealthReport, Lease, Reply, WatchStore
from bot.domain.health.rules import Change, Level, Rules, WatchState, observe, pending_announcement

log = logging.getLogger("opsbot.health.watch")
TICK_JOB = "health.watch_tick"
ENSURE_JOB = "health.ensure_watches"
SUPERVISE_EVERY = timedelta(minutes=5)
ALERT_KIND = "health-alert"
ALERT_TTL_SECONDS = 7 * 24 * 3600
SILENCE_FOR = timedelta(hours=1)
ICONS = {Level.OK: "🟢", Level.WARNING: "🟠", Level.DOWN: "🔴"}
SEVERITY_HINT = {Level.DOWN: "P0", Level.WARNING: "P2"}
INCIDENT_BUTTON = "incident_declare_from_alert"  # handled by the incidents family, never here


@dataclass(frozen=True)
class HealthAlert:
    """A watch's state change, posted to the alerts channel; bad news carries the two buttons."""

    template: ClassVar[str] = "health/alert"
    headline: str
    lines: list[str]
    alert_id: str | None
    rule: str
    at: datetime


@dataclass(frozen=True)
class AlertSilenced:
    template: ClassVar[str] = "health/silenced"
    service: str
    environment: str
    by: str
    until: datetime


def watch_key(service: str, environment: str) -> str:
    return f"{service}/{environment}"


def chain_key(service: str, environment: str) -> str:
    """The job key of a watch's pending tick: at most one is ever pending."""
    return f"health-watch:{service}:{environment}"


def ensure_watches(call: Call, payload: dict[str, Any]) -> None:
    """Start every configured watch that has no pending tick; run at worker start and every few minutes."""
    jobs, now = call.services.jobs, call.services.clock.now()
    watched = call.config.watched()
    if not watched:
        return  # nothing to supervise (the config is read at start: a new watch needs a restart anyway)
    for service, environment in watched:
        jobs.schedule(now, TICK_JOB, {"service": service, "environment": environment}, key=chain_key(service, environment))
    jobs.schedule(now + SUPERVISE_EVERY, ENSURE_JOB, {}, key="health:supervisor")


def tick(call: Call, payload: dict[str, Any]) -> None:
    """One check of one watch: schedule the next, check, fold in the rules, record and announce changes."""
    service, environment = str(payload.get("service")), str(payload.get("environment"))
    watch = call.config.watched().get((service, environment))
    if watch is None:
        return  # no longer watched: the chain ends here
    services, now = call.services, call.services.clock.now()
    # The successor first: a crash in the middle of this tick must not end the watch.
    services.jobs.schedule(now + timedelta(seconds=watch.interval_seconds), TICK_JOB, payload, key=chain_key(service, environment))
    store = _store(call)
    key = watch_key(service, environment)
    lease = store.lease(key, _lease_seconds(call, service, environment))
    if lease is None:
        return  # another replica is checking this watch right now
    try:
        state = WatchState.from_dict(store.load(key))
        if state.last_tick and now - state.last_tick < timedelta(seconds=watch.interval_seconds / 2):
            return  # a second chain (a restart raced the supervisor): the first one already checked
        _tick(call, store, lease, (service, environment), watch, state, now)
    finally:
        store.release(lease)


def _tick(call: Call, store: WatchStore, lease: Lease, target: tuple[str, str], watch: Watch, state: WatchState, now: datetime) -> None:
    service, environment = target
    key = watch_key(service, environment)
    assert call.services.health is not None
    report = call.services.health.check(service, environment)
    was = state.level
    state, change = observe(state, report.status, worst_reason(report), now, Rules.of(watch))
    state = replace(state, fence=lease.fence)
    silence = store.silence_of(key)
    due = pending_announcement(state, silenced=silence is not None and silence[0] > now)
    told = state
    alert: HealthAlert | None = None
    if due is not None:
        alert, told = _announcement(call, service, environment, watch, state, due, report, now, was)
    if not store.save(lease, told.to_dict()):
        log.warning("health watch %s: lease lost before saving; a newer tick owns it", key)
        return
    if change is not None:
        _audit_change(call, service, environment, change, announced=alert is not None)
    if alert is not None:
        try:
            call.services.notifier.post(call.config.channels.alerts, alert)
        except OpsError as exc:
            # Not announced: put the old announcement back so the next tick tries again.
            log.error("health watch %s: could not post the alert (%s); will retry", key, exc.message)
            store.save(lease, replace(told, announced=state.announced, announced_since=state.announced_since).to_dict())


def _announcement(call: Call, service: str, environment: str, watch: Watch, state: WatchState,
                  due: tuple[Level, Level], report: HealthReport, now: datetime, was: Level) -> tuple[HealthAlert, WatchState]:
    told, level = due
    # A service that went down during a silence recovers, even if the channel last heard "slow".
    headline = headline_of(service, environment, Level.DOWN if was is Level.DOWN else told, level, state, watch, now)
    alert_id = None
    if level is not Level.OK:
        alert_id = call.services.state.put(ALERT_KIND, {
            "service": service, "environment": environment, "level": level.value, "summary": headline.split(" ", 1)[1],
            "severity_hint": SEVERITY_HINT[level], "at": now.isoformat(), "checks": check_lines(report),
        }, ALERT_TTL_SECONDS)
    alert = HealthAlert(headline, check_lines(report), alert_id, rule_text(watch), now)
    return alert, replace(state, announced=level, announced_since=now, alert_id=alert_id or state.alert_id)


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
        f"{marks[c.status]} {c.name}" + (f" {c.latency_ms:.0f} ms" if c.latency_ms is not None else "") + (f": {c.reason}" if c.reason else "")
        for c in report.checks[:15]
    ]


def rule_text(watch: Watch) -> str:
    return (f"every {human(timedelta(seconds=watch.interval_seconds))} · down after {watch.failures} failures in "
            f"{human(timedelta(seconds=watch.window_seconds))} · slow after {watch.slow_checks} slow checks · "
            f"recovered after {watch.recover_checks} healthy checks")


def human(span: timedelta) -> str:
    """``12 min``, ``45 s``, ``1 h 5 min``."""
    seconds = max(int(span.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds} s"
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours} h {minutes} min" if hours and minutes else f"{hours} h" if hours else f"{minutes} min"


def _audit_change(call: Call, service: str, environment: str, change: Change, *, announced: bool) -> None:
    action = {Level.DOWN: "health.down", Level.WARNING: "health.warning", Level.OK: "health.recovered"}[change.after]
    entry = AuditEntry(
        actor=call.actor.user_id, action=action, outcome="ok", target=watch_key(service, environment),
        params={"from": change.before.value, "reason": change.reason[:300], "announced": announced,
                "after_seconds": int(change.lasted.total_seconds())},
        source="job", service=service, environment=environment,
    )
    try:
        call.services.audit.record(entry)
    except Unavailable as exc:  # the change happened; keep it where operators will find it
        log.error("audit log unavailable (%s); entry: %s", exc.detail or exc.what, entry)


def _lease_seconds(call: Call, service: str, environment: str) -> float:
    """Long enough for the slowest possible check: every request timing out, in waves of the concurrency cap."""
    spec = call.config.services[service].environments[environment]
    timeouts = [c.timeout_ms for c in spec.health] + ([spec.version_timeout_ms] if spec.version_url else [])
    waves = -(-len(timeouts) // call.config.health.concurrency)
    return waves * max(timeouts) / 1000 + 30


def _store(call: Call) -> WatchStore:
    if call.services.watches is None:
        raise Unavailable("The health watch store", "not configured")
    return call.services.watches


def alert_context(call: Call, alert_id: str) -> dict[str, Any]:
    """What an alert's "Declare incident" button needs: service, environment, summary, severity_hint."""
    data = call.services.state.get(ALERT_KIND, alert_id) if alert_id else None
    if data is None:
        raise NotFound("health alert (it may have expired)", alert_id[:40])
    return {
        "service": data["service"], "environment": data["environment"], "summary": data["summary"],
        "severity_hint": data["severity_hint"], "level": data["level"], "at": data["at"], "checks": list(data.get("checks", [])),
    }


def silence(call: Call, alert_id: str) -> Reply:
    """The alert's "Silence 1h" button: mute that watch's bad news for an hour (deployer or above)."""
    call.services.policy.require(call.actor, Role.DEPLOYER, "silence health alerts")
    alert = alert_context(call, alert_id)
    service, environment = alert["service"], alert["environment"]
    until = call.services.clock.now() + SILENCE_FOR
    # Audited first: if the audit log cannot take it, nothing is silenced.
    call.services.audit.record(AuditEntry(
        actor=call.actor.user_id, action="health.silenced", outcome="ok", target=watch_key(service, environment),
        params={"alert": alert_id, "until": until.isoformat()}, channel=call.actor.channel_id,
        request_id=call.actor.request_id, source=call.actor.source, service=service, environment=environment,
    ))
    _store(call).silence(watch_key(service, environment), until, call.actor.user_id)
    return Reply(AlertSilenced(service, environment, call.actor.user_id, until), visibility="in_channel")
