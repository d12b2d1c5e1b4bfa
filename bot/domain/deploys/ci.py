"""The CI gate's facts: a version's checks as GitHub reports them, and what they add up to.

A ref's CI is its commit statuses (``GET /repos/{owner}/{repo}/commits/{ref}/status``, one per context) and its
check runs (``GET …/commits/{ref}/check-runs``). GitHub's own rules ("About status checks", REST "Get the combined
status for a specific reference", "Check runs"): a status is ``success``, ``pending``, ``failure`` or ``error``; a
check run is ``queued``/``in_progress`` until ``completed`` with a ``conclusion``, of which ``success``, ``neutral``
and ``skipped`` pass (branch protection counts them as passed) and any other fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.config import CiGate, OpsConfig, Service
from bot.domain.deploys.model import Deploy, DeployKind
from bot.domain.shared.errors import OpsError
from bot.domain.shared.text import word_for

PASSING_CONCLUSIONS = frozenset({"success", "neutral", "skipped"})
FAILED_STATUSES = frozenset({"failure", "error"})


class CheckState(StrEnum):
    PASSED = "passed"
    PENDING = "pending"
    FAILED = "failed"


class CiState(StrEnum):
    """What a deploy row records of its CI gate (``Deploy.ci_state``); None there: no gate applies."""

    PENDING = "pending"  # the request waits for CI (a poll is scheduled)
    GREEN = "green"  # every check passed: the deploy may start once approved
    FAILED = "failed"  # a check failed, or CI stayed pending past ci_timeout_minutes: the request was refused


@dataclass(frozen=True)
class CiCheck:
    """One check run or commit status of the ref: its name (a check run's ``name``, a status's ``context``), its
    state, GitHub's word for it (``failure``, ``timed_out``, ``in_progress`` …) and its page (``html_url`` /
    ``target_url``)."""

    name: str
    state: CheckState
    detail: str
    link: str | None = None


@dataclass(frozen=True)
class CiReport:
    """Every check of ``ref`` in ``repo``; ``missing`` are required checks GitHub has not reported yet."""

    repo: str
    ref: str
    checks: tuple[CiCheck, ...]
    missing: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return len(self.checks) + len(self.missing)

    @property
    def done(self) -> int:
        return sum(1 for c in self.checks if c.state is not CheckState.PENDING)

    @property
    def passed(self) -> int:
        return sum(1 for c in self.checks if c.state is CheckState.PASSED)

    @property
    def failed(self) -> CiCheck | None:
        """The first failing check, if any."""
        return next((c for c in self.checks if c.state is CheckState.FAILED), None)

    @property
    def green(self) -> bool:
        """Every check passed and none is missing. A ref with no checks at all is not green: CI has not reported."""
        return self.total > 0 and not self.missing and all(c.state is CheckState.PASSED for c in self.checks)

    @property
    def state(self) -> CiState:
        if self.failed is not None:
            return CiState.FAILED
        return CiState.GREEN if self.green else CiState.PENDING

    @property
    def summary(self) -> str:
        """One line: ``✅ 5 of 5 checks passed``, ``waiting for CI (3 of 5 checks done)``, ``❌ check `build` failed``."""
        failed = self.failed
        if failed is not None:
            return f"❌ {describe_failure(failed)}"
        if self.green:
            return f"✅ {self.done} of {self.total} {word_for(self.total, 'check')} passed"
        if self.total == 0:
            return "waiting for CI (no checks reported yet)"
        missing = f"; not reported yet: {', '.join(self.missing)}" if self.missing else ""
        return f"waiting for CI ({self.done} of {self.total} {word_for(self.total, 'check')} done{missing})"


class CiUnreadable(OpsError):
    """CI could not be read: GitHub unreachable, the token refused, a rate limit, an unknown ref, an answer that is
    not what GitHub sends, more checks than opsbot reads. ``outcome`` names which for the audit log
    (``ci_unreachable``, ``ci_unauthorized``, ``ci_forbidden``, ``ci_rate_limited``, ``ci_unknown_ref``,
    ``ci_malformed``, ``ci_too_many_checks``); ``message`` says what happened and what to do (a request refused at
    once); ``problem`` only what happened (a waiting request's poll says itself when it tries again)."""

    def __init__(self, outcome: str, message: str, problem: str | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.problem = problem or message


def check_label(name: str) -> str:
    """A check's name safe inside Slack link markup (``<url|label>``)."""
    return name.replace("<", "‹").replace(">", "›").replace("|", "¦")[:100]


def describe_failure(check: CiCheck) -> str:
    """``check `build` failed (failure): <link|details>``."""
    name = check_label(check.name)
    where = f": <{check.link}|details>" if check.link and check.link.startswith(("http://", "https://")) else ""
    return f"check `{name}` failed ({check.detail}){where}"


def gate_for(spec: Service, kind: DeployKind, environment: str) -> CiGate | None:
    """The service's CI gate when it applies: a deploy (not a rollback) to one of ``ci.environments`` (default: all)."""
    gate = spec.ci
    if gate is None or kind is not DeployKind.DEPLOY:
        return None
    if gate.environments is not None and environment not in gate.environments:
        return None
    return gate


def gate_of(config: OpsConfig, deploy: Deploy) -> CiGate | None:
    """The CI gate the config sets now for ``deploy`` (its service may have lost it, or be gone, since it was requested)."""
    spec = config.services.get(deploy.service)
    return gate_for(spec, deploy.kind, deploy.environment) if spec is not None else None


@dataclass(frozen=True)
class CiReading:
    """CI of ``ref`` as read at request time: a report, or why it could not be read."""

    gate: CiGate
    ref: str
    report: CiReport | None = None
    error: CiUnreadable | None = None

    @property
    def line(self) -> str:
        """The "CI" line of the request, the dry run and the audit log."""
        if self.report is not None:
            return self.report.summary
        return f"could not be read: {self.error.message if self.error else 'unknown'}"


def minutes(value: float) -> str:
    """``1 minute``, ``0.5 minutes``, ``30 minutes``."""
    return f"{value:g} {word_for(1 if value == 1 else 2, 'minute')}"


def deadline(gate: CiGate, deploy: Deploy) -> datetime:
    return deploy.requested_at + timedelta(minutes=gate.ci_timeout_minutes)


def lock_seconds(gate: CiGate, deploy: Deploy, now: datetime, after: float) -> float:
    """How long a waiting deploy's lock must last: until its CI deadline, plus ``after`` (the run's own TTL)."""
    return max((deadline(gate, deploy) - now).total_seconds(), 0) + after
