"""`/ops health [service|all] [env] [--post]` and `/ops health watches`: health now, and what the watches see.

The same engine (``services.health``) serves deploy verification: ``call.services.health.check(service,
env)`` returns a ``HealthReport`` whose ``status``, ``checks[i].reason`` and ``version`` callers read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from bot.domain.shared import catalog
from bot.domain.shared.commands import Args, Subcommand, expect, no_args
from bot.domain.shared.context import Call
from bot.domain.dispatch import JobSpec
from bot.domain.shared.errors import NotFound, Unavailable
from bot.domain.health.judge import RANK, overall
from bot.domain.health.watches import ENSURE_JOB, TICK_JOB, alert_context, ensure_watches, rule_text, silence, tick, watch_key
from bot.domain.shared.policy import Role
from bot.domain.shared.ports import CheckOutcome, HealthFanout, HealthProbe, HealthReport, Reply
from bot.domain.health.rules import Level, WatchState

__all__ = ["COMMANDS", "JOBS", "STARTUP_JOBS", "alert_context", "silence"]

USAGE = "health [service|all] [env] [--post]"
MAX_GROUPS = 40  # sections in one message; Slack takes 50 blocks and the rest frame them
MAX_LINES = 20  # check lines per section
ICONS = {"healthy": "✅", "degraded": "⚠️", "failed": "❌"}
WORDS = {"healthy": "All healthy", "degraded": "Degraded", "failed": "Failing"}
LEVEL_ICONS = {Level.OK: "🟢", Level.WARNING: "🟠", Level.DOWN: "🔴"}


@dataclass(frozen=True)
class ShowHealth:
    service: str | None = None  # None: the default service; "all": every service
    environment: str | None = None
    post: bool = False


@dataclass(frozen=True)
class CheckLine:
    icon: str
    name: str
    latency: str
    reason: str | None


@dataclass(frozen=True)
class Counts:
    healthy: int = 0
    degraded: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.healthy + self.degraded + self.failed

    @classmethod
    def of(cls, statuses: list[str]) -> Counts:
        return cls(*(statuses.count(status) for status in ("healthy", "degraded", "failed")))


@dataclass(frozen=True)
class ReportGroup:
    """One service in one environment: a section of the message."""

    icon: str
    title: str
    version: str | None
    version_error: str | None
    lines: list[CheckLine]
    hidden: int


@dataclass(frozen=True)
class HealthOverview:
    template: ClassVar[str] = "health/report"
    scope: str
    icon: str
    verdict: str
    counts: Counts  # checks by status
    services: Counts  # service environments by status
    groups: list[ReportGroup]
    folded_healthy: list[str]
    folded_unhealthy: list[str]
    unconfigured: list[str]
    elapsed_ms: int
    at: datetime


@dataclass(frozen=True)
class WatchLine:
    icon: str
    target: str
    level: str
    since: datetime | None
    last_tick: datetime | None
    silenced_until: datetime | None
    silenced_by: str | None
    reason: str
    rule: str


@dataclass(frozen=True)
class WatchList:
    template: ClassVar[str] = "health/watches"
    watches: list[WatchLine]
    now: datetime


def parse(args: Args) -> ShowHealth:
    words = expect(args, USAGE, required=0, optional=2)
    service = words[0].lower() if words else None
    environment = words[1].lower() if len(words) > 1 else None
    return ShowHealth(service, environment, "post" in args.flags)


def targets(call: Call, command: ShowHealth) -> tuple[str, list[tuple[str, str]], list[str]]:
    """(scope, the service/environment pairs to check, pairs asked for that have no checks)."""
    config = call.config
    service, env = command.service, command.environment
    if service is None and config.default_service is None:
        service = "all"  # nothing to default to: everything
    if service is not None and service != "all" and service not in config.services and env is None and service in config.environments:
        service, env = "all", service  # `/ops health production`: every service there
    if service == "all":
        if env is not None and env not in config.environments:
            raise NotFound("environment", env, catalog.suggest(env, config.environments))
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


def probe(call: Call) -> HealthProbe:
    if call.services.health is None:
        raise Unavailable("The health checker", "not configured")
    return call.services.health


def check_all(call: Call, pairs: list[tuple[str, str]]) -> list[HealthReport]:
    """Every pair's report, all at once when the probe can fan out."""
    engine = probe(call)
    if isinstance(engine, HealthFanout):
        return engine.check_many(pairs)
    return [engine.check(service, env) for service, env in pairs]


def run(command: ShowHealth, call: Call) -> Reply:
    scope, pairs, unconfigured = targets(call, command)
    started = time.perf_counter()
    reports = check_all(call, pairs) if pairs else []
    elapsed = int((time.perf_counter() - started) * 1000)
    message = overview(scope, reports, unconfigured, elapsed, call.services.clock.now())
    return Reply(message, visibility="in_channel" if command.post else "ephemeral")


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
        scope=scope, icon=ICONS[status] if reports else "➖", verdict=WORDS[status] if reports else "Nothing to check",
        counts=counts, services=per_service, groups=[group(r) for r in shown],
        folded_healthy=folded_healthy, folded_unhealthy=folded_unhealthy, unconfigured=unconfigured,
        elapsed_ms=elapsed_ms, at=at,
    )


def group(report: HealthReport) -> ReportGroup:
    checks = sorted(report.checks, key=lambda c: -RANK[c.status]) if len(report.checks) > MAX_LINES else report.checks
    lines = [line(c) for c in checks[:MAX_LINES]]
    return ReportGroup(ICONS[report.status], f"{report.service} · {report.environment}", report.version,
                       report.version_error, lines, len(report.checks) - len(lines))


def line(check: CheckOutcome) -> CheckLine:
    latency = f"{check.latency_ms:.0f} ms" if check.latency_ms is not None else "—"
    return CheckLine(ICONS[check.status], check.name, latency, check.reason)


def parse_watches(args: Args) -> None:
    no_args(args)


def run_watches(command: None, call: Call) -> Reply:
    """Every configured watch: its level, since when, any silence, its rules."""
    store = call.services.watches
    if store is None:
        raise Unavailable("The health watch store", "not configured")
    now = call.services.clock.now()
    lines = []
    for (service, env), watch in sorted(call.config.watched().items()):
        key = watch_key(service, env)
        state = WatchState.from_dict(store.load(key))
        silenced = store.silence_of(key)
        active = silenced if silenced and silenced[0] > now else None
        lines.append(WatchLine(
            LEVEL_ICONS[state.level], f"{service} {env}", state.level.value.upper(), state.since, state.last_tick,
            active[0] if active else None, active[1] if active else None,
            state.reason if state.level is not Level.OK else "", rule_text(watch),
        ))
    return Reply(WatchList(lines, now))


JOBS = [
    JobSpec(TICK_JOB, tick, audited=False),
    JobSpec(ENSURE_JOB, ensure_watches, audited=False),
]
# Submitted by every `opsbot worker` when it starts (keyed: replicas do not pile them up).
STARTUP_JOBS = [ENSURE_JOB]
COMMANDS: list[Subcommand[Any]] = [
    Subcommand(("health",), "Check a service's health endpoints now (all of them at once)", USAGE, Role.VIEWER, parse, run,
               flags=frozenset({"post"})),
    Subcommand(("health", "watches"), "What the background health watches see, and any silences", "health watches",
               Role.VIEWER, parse_watches, run_watches),
]
