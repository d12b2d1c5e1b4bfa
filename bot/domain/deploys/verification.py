"""After the provider succeeds: the service's health checks, version endpoint and metric guardrails, over a watch window.

Every check in the window must pass: no failed health check (``degraded`` is noted, not failed),
when the service has a ``version_url`` the reported version must be the one deployed (a leading
``v`` is ignored on both sides), and no metric guardrail may read critical (``guardrails.py``; an
unknown reading fails only when the environment says ``on_unknown: fail``). The first check that
does not pass ends the watch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.config import OpsConfig
from bot.config.durations import format_duration
from bot.domain.deploys.guardrails import GuardrailReading, GuardrailWatch, problem, summary
from bot.domain.health.model import HealthReport
from bot.domain.health.ports import HealthProbe
from bot.domain.shared.errors import OpsError
from bot.domain.shared.metrics import MetricsReader, NoMetricsStore
from bot.domain.shared.ports import Clock
from bot.domain.shared.text import plural


@dataclass(frozen=True)
class Verdict:
    ok: bool
    summary: str
    checks: int = 0
    verified: bool = True  # False when there was nothing to verify with
    guardrails: tuple[GuardrailReading, ...] = ()  # each metric guardrail's last reading
    breached: bool = False  # a metric guardrail read critical (what `auto_rollback` acts on)
    metrics_note: str = ""  # the end of ``summary`` that lists the guardrails ("; metrics: …")

    @property
    def checks_summary(self) -> str:
        """``summary`` without the guardrails' list, for messages that show the guardrails apart."""
        return self.summary.removesuffix(self.metrics_note)


def same_version(reported: str, deployed: str) -> bool:
    return reported.strip().removeprefix("v") == deployed.strip().removeprefix("v")


def judge(report: HealthReport, version: str, expects_version: bool) -> str | None:
    """What is wrong with ``report`` for a deploy of ``version``; None when it passes."""
    if report.status == "failed":
        failing = [c for c in report.checks if c.status == "failed"]
        reasons = [f"health check {c.name} failed: {c.reason or 'no reason given'}" for c in failing]
        return "; ".join(reasons) or "the health checks failed"
    if expects_version:
        if report.version is None:
            return f"the version endpoint did not answer ({report.version_error or 'no version reported'})"
        if not same_version(report.version, version):
            return f"the version endpoint reports {report.version}, not {version}"
    return None


def _health_problem(
    health: HealthProbe, service: str, environment: str, version: str, expects_version: bool, degraded: set[str]
) -> str | None:
    """One round of health checks: what is wrong, or None (slow checks are added to ``degraded``)."""
    try:
        report = health.check(service, environment)
    except OpsError as exc:
        return f"the health checks could not run: {exc.message}"
    degraded.update(c.name for c in report.checks if c.status == "degraded")
    return judge(report, version, expects_version)


def watch(
    config: OpsConfig,
    clock: Clock,
    health: HealthProbe,
    service: str,
    environment: str,
    version: str,
    *,
    sleep: Callable[[float], object] = time.sleep,
    stopped: Callable[[], str | None] = lambda: None,
    metrics: MetricsReader | None = None,
    since: datetime | None = None,
    guardrails_decide: bool = True,
) -> Verdict:
    """Check repeatedly until the window ends or a check fails; always at least once.

    The window is ``deploys.watch_seconds`` with a check every ``deploys.check_every_seconds`` (the
    runbook's "watch for five minutes" after a deploy). ``stopped`` says why to stop early (a lost lock, a cancel).
    ``metrics`` reads the target's guardrails, whose baselines end at ``since`` (the deploy's start). With
    ``guardrails_decide`` False (a rollback) they are read and listed but fail nothing: right after a bad version
    their windows (``rate(…[1m])``) still hold its errors, and the way back must not be judged by them.
    """
    settings = config.deploys
    target = config.services[service].environments[environment]
    on_unknown = config.environments[environment].on_unknown
    guardrails = GuardrailWatch(metrics or NoMetricsStore(), target.metrics, service, environment, since)
    expects_version = target.version_url is not None
    if not target.health and not expects_version and not (guardrails and guardrails_decide):
        return Verdict(True, "no health checks or version endpoint are configured, so it was not verified", verified=False)
    deadline = clock.now() + timedelta(seconds=settings.watch_seconds)
    rounds = 1 + math.ceil(settings.watch_seconds / settings.check_every_seconds)  # a bound even if the clock stands still
    degraded: set[str] = set()
    probes = bool(target.health) or expects_version
    for done in range(1, rounds + 1):
        wrong = _health_problem(health, service, environment, version, expects_version, degraded) if probes else None
        if wrong:
            return Verdict(False, wrong, done, guardrails=tuple(guardrails.latest))
        if guardrails:
            readings = guardrails.round()
            wrong = problem(readings, on_unknown) if guardrails_decide else None
            if wrong:
                breached = any(r.status == "critical" for r in readings)
                return Verdict(False, wrong, done, guardrails=tuple(readings), breached=breached)
        remaining = (deadline - clock.now()).total_seconds()
        if remaining <= 0 or done == rounds:
            break
        sleep(min(settings.check_every_seconds, remaining))
        why = stopped()
        if why:
            return Verdict(
                False, f"verification was stopped after {plural(done, 'check')}: {why}", done, guardrails=tuple(guardrails.latest)
            )
    window = format_duration(timedelta(seconds=settings.watch_seconds))
    text = f"{plural(done, 'check')} over {window} passed" + (f", reporting {version}" if expects_version else "")
    if degraded:
        text += f" (slow: {', '.join(sorted(degraded))})"
    note = f"; metrics: {summary(guardrails.latest)}" if guardrails else ""
    return Verdict(True, text + note, done, guardrails=tuple(guardrails.latest), metrics_note=note)
