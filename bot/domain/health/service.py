"""`/ops health [service|all] [env] [--post]`, `/ops health watches`, and the alert buttons' lookups.

The same engine (``HealthProbe``) serves deploy verification: ``probe.check(service, env)`` returns
a ``HealthReport`` whose ``status``, ``checks[i].reason`` and ``version`` callers read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.domain.health.deps import HealthDeps
from bot.domain.health.judge import RANK, overall
from bot.domain.health.messages import (
    AlertSilenced,
    CheckLine,
    Counts,
    HealthOverview,
    ReportGroup,
    WatchLine,
    WatchList,
)
from bot.domain.health.metric_alerts import ALERT_KIND, rule_summary
from bot.domain.health.model import CheckOutcome, HealthReport, WatchReading
from bot.domain.health.ports import HealthFanout
from bot.domain.health.rules import Level, WatchState
from bot.domain.health.watches import ENSURE_JOB, TICK_JOB, HealthWatches, rule_text, watch_key
from bot.domain.shared import catalog
from bot.domain.shared.audit import entry
from bot.domain.shared.commands import Args, Subcommand, expect, no_args
from bot.domain.shared.errors import NotFound
from bot.domain.shared.family import Family, JobSpec
from bot.domain.shared.policy import Actor, Role
from bot.domain.shared.ports import Reply

USAGE = "health [service|all] [env] [--post]"
MAX_GROUPS = 40  # sections in one message; Slack takes 50 blocks and the rest frame them
MAX_LINES = 20  # check lines per section
ICONS = {"healthy": "✅", "degraded": "⚠️", "failed": "❌"}
WORDS = {"healthy": "All healthy", "degraded": "Degraded", "failed": "Failing"}
LEVEL_ICONS = {Level.OK: "🟢", Level.WARNING: "🟠", Level.DOWN: "🔴"}
SILENCE_FOR = timedelta(hours=1)


@dataclass(frozen=True)
class ShowHealth:
    service: str | None = None  # None: the default service; "all": every service
    environment: str | None = None
    post: bool = False


def parse(args: Args) -> ShowHealth:
    words = expect(args, USAGE, required=0, optional=2)
    service = words[0].lower() if words else None
    environment = words[1].lower() if len(words) > 1 else None
    return ShowHealth(service, environment, "post" in args.flags)


def parse_watches(args: Args) -> None:
    no_args(args)


class HealthService:
    """Health on demand, what the watches see, and the health alerts' buttons."""

    def __init__(self, deps: HealthDeps, watches: HealthWatches) -> None:
        self._d = deps
        self.watches = watches

    def family(self) -> Family:
        return Family(
            "health",
            commands=[
                Subcommand(
                    ("health",),
                    "Check a service's health endpoints now (all of them at once)",
                    USAGE,
                    Role.VIEWER,
                    parse,
                    self.show,
                    flags=frozenset({"post"}),
                ),
                Subcommand(
                    ("health", "watches"),
                    "What the background health watches see, and any silences",
                    "health watches",
                    Role.VIEWER,
                    parse_watches,
                    self.list_watches,
                ),
            ],
            jobs=[
                JobSpec(TICK_JOB, self.watches.tick, audited=False),
                JobSpec(ENSURE_JOB, self.watches.ensure_watches, audited=False),
            ],
            # Submitted by every `opsbot worker` when it starts (keyed: replicas do not pile them up).
            startup_jobs=[ENSURE_JOB],
        )

    def targets(self, command: ShowHealth) -> tuple[str, list[tuple[str, str]], list[str]]:
        """(scope, the service/environment pairs to check, pairs asked for that have no checks)."""
        config = self._d.config
        service, env = command.service, command.environment
        if service is None and config.default_service is None:
            service = "all"  # nothing to default to: everything
        if (
            service is not None
            and service != "all"
            and service not in config.services
            and env is None
            and service in config.environments
        ):
            service, env = "all", service  # `/ops health production`: every service there
        if service == "all":
            if env is not None and env not in config.environments:
                raise NotFound("environment", env, catalog.suggest(env, config.environments), known=list(config.environments))
            names = sorted(config.services)
            scope = "all services" + (f" in {env}" if env else "")
        else:
            name, _ = catalog.service(config, service)
            if env is not None:
                env = catalog.environment(config, name, env)
            names = [name]
            scope = name + (f" in {env}" if env else "")
        pairs = [(n, e) for n in names for e in config.services[n].environments if env is None or e == env]
        checked = [(n, e) for n, e in pairs if config.services[n].environments[e].health]
        return scope, checked, [f"{n}/{e}" for n, e in pairs if (n, e) not in checked]

    def check_all(self, pairs: list[tuple[str, str]]) -> list[HealthReport]:
        """Every pair's report, all at once when the probe can fan out."""
        engine = self._d.probe
        if isinstance(engine, HealthFanout):
            return engine.check_many(pairs)
        return [engine.check(service, env) for service, env in pairs]

    def show(self, command: ShowHealth, actor: Actor) -> Reply:
        scope, pairs, unconfigured = self.targets(command)
        started = time.perf_counter()
        reports = self.check_all(pairs) if pairs else []
        elapsed = int((time.perf_counter() - started) * 1000)
        message = overview(scope, reports, unconfigured, elapsed, self._d.clock.now())
        return Reply(message, visibility="in_channel" if command.post else "ephemeral")

    def list_watches(self, command: None, actor: Actor) -> Reply:
        """Every configured watch: its level, since when, any silence, its rules."""
        store, now = self._d.watches, self._d.clock.now()
        lines = []
        for (service, env), watch in sorted(self._d.config.watched().items()):
            key = watch_key(service, env)
            state = WatchState.from_dict(store.load(key))
            silenced = store.silence_of(key)
            active = silenced if silenced and silenced[0] > now else None
            lines.append(
                WatchLine(
                    LEVEL_ICONS[state.level],
                    f"{service} {env}",
                    state.level.value.upper(),
                    state.since,
                    state.last_tick,
                    active[0] if active else None,
                    active[1] if active else None,
                    state.reason if state.level is not Level.OK else "",
                    rule_text(watch) + rule_summary(watch, state.metric_rules),
                )
            )
        return Reply(WatchList(lines, now))

    def watch_readings(self) -> dict[tuple[str, str], WatchReading]:
        """Each watched (service, environment) as its watch last saw it (the public status page reads this).

        Raises Unavailable when the shared watch store (Redis) cannot be read."""
        store = self._d.watches
        readings = {}
        for service, env in sorted(self._d.config.watched()):
            data = store.load(watch_key(service, env))
            state = WatchState.from_dict(data)
            readings[(service, env)] = WatchReading(state.level.value if data else None, state.since if data else None)
        return readings

    def alert_context(self, alert_id: str) -> dict[str, Any]:
        """What an alert's "Declare incident" button needs: service, environment, summary, severity_hint."""
        data = self._d.state.get(ALERT_KIND, alert_id) if alert_id else None
        if data is None:
            raise NotFound("health alert (it may have expired)", alert_id[:40])
        return {
            "service": data["service"],
            "environment": data["environment"],
            "summary": data["summary"],
            "severity_hint": data["severity_hint"],
            "level": data["level"],
            "at": data["at"],
            "checks": list(data.get("checks", [])),
        }

    def silence(self, actor: Actor, alert_id: str) -> Reply:
        """The alert's "Silence 1h" button: mute that watch's bad news for an hour (deployer or above)."""
        self._d.policy.require(actor, Role.DEPLOYER, "silence health alerts")
        alert = self.alert_context(alert_id)
        service, environment = alert["service"], alert["environment"]
        until = self._d.clock.now() + SILENCE_FOR
        # Audited first: if the audit log cannot take it, nothing is silenced.
        self._d.audit.record(
            entry(
                actor,
                "health.silenced",
                target=watch_key(service, environment),
                params={"alert": alert_id, "until": until.isoformat()},
                service=service,
                environment=environment,
            )
        )
        self._d.watches.silence(watch_key(service, environment), until, actor.user_id)
        return Reply(AlertSilenced(service, environment, actor.user_id, until), visibility="in_channel")


def overview(scope: str, reports: list[HealthReport], unconfigured: list[str], elapsed_ms: int, at: datetime) -> HealthOverview:
    """The message: worst first; beyond MAX_GROUPS sections, healthy services fold into one line, then the rest."""
    ordered = sorted(reports, key=lambda r: (-RANK[r.status], r.service, r.environment))
    unhealthy = [r for r in ordered if r.status != "healthy"]
    healthy = [r for r in ordered if r.status == "healthy"]
    if len(ordered) <= MAX_GROUPS:
        shown, folded_healthy, folded_unhealthy = ordered, [], []
    else:
        shown = unhealthy[:MAX_GROUPS]
        folded_unhealthy = [f"{r.service}/{r.environment}" for r in unhealthy[MAX_GROUPS:]]
        folded_healthy = [f"{r.service}/{r.environment}" for r in healthy]
    status = overall(r.status for r in reports)
    counts = Counts.of([c.status for r in reports for c in r.checks])
    per_service = Counts.of([r.status for r in reports])
    return HealthOverview(
        scope=scope,
        icon=ICONS[status] if reports else "➖",
        verdict=WORDS[status] if reports else "Nothing to check",
        counts=counts,
        services=per_service,
        groups=[group(r) for r in shown],
        folded_healthy=folded_healthy,
        folded_unhealthy=folded_unhealthy,
        unconfigured=unconfigured,
        elapsed_ms=elapsed_ms,
        at=at,
    )


def group(report: HealthReport) -> ReportGroup:
    checks = sorted(report.checks, key=lambda c: -RANK[c.status]) if len(report.checks) > MAX_LINES else report.checks
    lines = [line(c) for c in checks[:MAX_LINES]]
    return ReportGroup(
        ICONS[report.status],
        f"{report.service} · {report.environment}",
        report.version,
        report.version_error,
        lines,
        len(report.checks) - len(lines),
    )


def line(check: CheckOutcome) -> CheckLine:
    latency = f"{check.latency_ms:.0f} ms" if check.latency_ms is not None else "—"
    return CheckLine(ICONS[check.status], check.name, latency, check.reason)
