"""Checking a deploy or rollback before anything happens: target, version, approvals, freezes, provider.

A ``Plan`` is everything a request needs and everything a dry run shows; building it changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.config import CiGate, Service
from bot.domain.approvals.model import ChecklistItem
from bot.domain.deploys.ci import CiReading, CiUnreadable, gate_for
from bot.domain.deploys.deps import DeployDeps
from bot.domain.deploys.model import Deploy, DeployKind, DeployOrder, DeployState
from bot.domain.shared import catalog
from bot.domain.shared.errors import OpsError, UsageError
from bot.domain.shared.policy import Actor, Role

VERSION_HINTS = {
    "semver": "a semver tag like v1.2.3",
    "git_sha": "a git SHA (7 to 40 lowercase hex characters)",
    "any": "letters, digits and . _ / + - (at most 128 characters)",
}


@dataclass(frozen=True)
class FreezeNote:
    """Why deploys are frozen right now: a configured window, or an ad-hoc freeze someone set."""

    target: str
    until: datetime
    reason: str
    by: str | None = None  # None for a configured window


@dataclass(frozen=True)
class PromotionGate:
    """``environments.<env>.requires_verified_in``: ``version`` must have succeeded (deployed and verified) in ``source``
    before it may be deployed to the gated environment. ``last`` is its latest run there (a deploy or a rollback to it)."""

    source: str
    version: str
    last: Deploy | None

    @property
    def passed(self) -> bool:
        return self.last is not None and self.last.state is DeployState.SUCCEEDED

    @property
    def ended(self) -> str:
        """How its latest run in ``source`` ended, in words: "succeeded", "failed", "was rolled back" …"""
        if self.last is None:
            return "never ran"
        return ENDINGS.get(self.last.state, self.last.state.value.replace("_", " "))

    @property
    def why(self) -> str:
        """One line for the refusal, the dry run and the audit log."""
        last = self.last
        if last is None:
            return f"{self.version} was never deployed to {self.source}"
        when = f"{last.started_at:%Y-%m-%d %H:%M} UTC" if last.started_at else "at an unknown time"
        what = "rolled back to" if last.kind is DeployKind.ROLLBACK else "deployed to"
        return f"{self.version} was last {what} {self.source} at {when} ({last.id}) and {self.ended}"

    @property
    def proof(self) -> str:
        """How the gate passed, for the checklist item it ticks: "v1.2.3 succeeded in staging at … (d-…)"."""
        last = self.last
        if last is None or not self.passed:
            return ""
        moment = last.finished_at or last.started_at
        when = f" at {moment:%Y-%m-%d %H:%M} UTC" if moment else ""
        return f"{self.version} succeeded in {self.source}{when} ({last.id})"


ENDINGS = {
    DeployState.SUCCEEDED: "succeeded (deployed and verified)",
    DeployState.FAILED: "failed",
    DeployState.ROLLED_BACK: "was rolled back",
    DeployState.RUNNING: "is still running",
    DeployState.UNKNOWN: "its outcome is unknown (an admin has not settled it)",
    DeployState.LOCK_LOST: "lost its lock before recording a result",
    DeployState.CANCELLED: "was cancelled",
}


@dataclass(frozen=True)
class Plan:
    kind: DeployKind
    service: str
    environment: str
    version: str
    reason: str
    required: int  # approvals the environment's policy asks for
    timeout_minutes: int
    lock_name: str
    provider: str  # what the provider would do, in words
    previous_version: str | None = None
    hotfix: bool = False  # a freeze or the promotion gate applies and --hotfix was given: an admin's approval on top
    freezes: list[FreezeNote] = field(default_factory=list)
    link: str | None = None
    rollback_of: str | None = None
    gate: PromotionGate | None = None  # the environment requires the version verified elsewhere first
    ci: CiReading | None = None  # the service's CI gate applies: the version's checks as read now
    checklist: tuple[ChecklistItem, ...] = ()  # what each approver ticks (environments.<env>.checklist), deploys only

    @property
    def gate_refused(self) -> bool:
        """The promotion gate applies and the version was not verified where it must be."""
        return self.gate is not None and not self.gate.passed

    @property
    def gate_bypassed(self) -> bool:
        """``--hotfix`` passes the refused gate, with an admin's approval on top."""
        return self.gate_refused and self.hotfix

    @property
    def needed(self) -> int:
        return self.required + (1 if self.hotfix else 0)

    @property
    def title(self) -> str:
        if self.kind is DeployKind.ROLLBACK:
            return f"Roll back {self.service} to {self.version} in {self.environment}"
        if self.gate_bypassed:
            return f"⚠️ HOTFIX, promotion gate bypassed: deploy {self.version} of {self.service} to {self.environment}"
        return f"Deploy {self.version} of {self.service} to {self.environment}"


def resolve(d: DeployDeps, service: str | None, environment: str | None) -> tuple[str, Service, str]:
    """The service (or the default one) and the environment (or its only one), both checked."""
    name, spec = catalog.service(d.config, service)
    if environment is None:
        if len(spec.environments) != 1:
            choices = " or ".join(f"`to {env}`" for env in spec.environments)
            raise UsageError(f"Say where to deploy `{name}`: {choices}.")
        return name, spec, next(iter(spec.environments))
    return name, spec, catalog.environment(d.config, name, environment)


def check_version(name: str, spec: Service, version: str) -> str:
    if not spec.version_regex().match(version):
        hint = VERSION_HINTS.get(spec.version_pattern, f"match `{spec.version_pattern}`")
        raise UsageError(f"`{version[:60]}` is not a valid version of `{name}`: it must be {hint}.")
    return version


def freezes_now(d: DeployDeps, service: str, environment: str) -> list[FreezeNote]:
    """The configured freeze windows and ad-hoc freezes that apply to this service and environment now."""
    now = d.clock.now()
    notes = [
        FreezeNote(environment, window.ends_after(now), f"freeze window {window.text}")
        for window in d.config.environments[environment].freeze_windows
        if window.contains(now)
    ]
    with d.uow() as uow:
        active = uow.deploys.active_freezes(now)
    for freeze in active:
        if (freeze.scope, freeze.target) in {("environment", environment), ("service", service)}:
            notes.append(FreezeNote(freeze.target, freeze.ends_at, freeze.reason, freeze.created_by))
    return notes


def change_link(spec: Service, service: str, environment: str, version: str, previous: str | None) -> str | None:
    """The service's ``change_url`` filled in; None when it needs a previous version we do not know."""
    if not spec.change_url or ("{previous}" in spec.change_url and previous is None):
        return None
    values = {"service": service, "environment": environment, "version": version, "previous": previous or ""}
    url = spec.change_url
    for key, value in values.items():
        url = url.replace("{" + key + "}", value)
    return url


def describe_provider(d: DeployDeps, spec: Service, service: str, order: DeployOrder) -> str:
    if spec.deploy is None:
        raise OpsError(f"`{service}` has no deploy provider configured (`services.{service}.deploy`); nothing can run it.")
    return d.providers.for_spec(spec.deploy).describe(order)


def promotion_gate(d: DeployDeps, kind: DeployKind, service: str, environment: str, version: str) -> PromotionGate | None:
    """The gate of ``environment`` for a deploy (rollbacks go back to versions that ran there already), or None."""
    source = d.config.environments[environment].requires_verified_in
    if source is None or kind is not DeployKind.DEPLOY:
        return None
    with d.uow() as uow:
        return PromotionGate(source, version, uow.deploys.last_of_version(service, source, version))


def read_ci(d: DeployDeps, gate: CiGate, ref: str, service: str) -> CiReading:
    """The CI of ``ref`` now, or why it could not be read (never raises ``CiUnreadable``)."""
    try:
        return CiReading(gate, ref, report=d.ci.read(gate, ref, service))
    except CiUnreadable as exc:
        return CiReading(gate, ref, error=exc)


def last_ran(d: DeployDeps, service: str, environment: str) -> Deploy | None:
    """The latest deploy or rollback that reached the provider and recorded a result."""
    with d.uow() as uow:
        return uow.deploys.last_ran(service, environment)


def build(
    d: DeployDeps,
    actor: Actor,
    *,
    kind: DeployKind,
    service: str,
    spec: Service,
    environment: str,
    version: str,
    reason: str,
    hotfix: bool,
    rollback_of: str | None = None,
) -> Plan:
    """Every check but the lock (CI is read here, once, when the service's CI gate applies); ``hotfix`` only takes effect when a freeze or a refused promotion gate applies.
    Raises NotPermitted unless the actor is a deployer in ``environment`` (its own roles where it sets them)."""
    d.policy.require(actor, Role.DEPLOYER, "rollback" if kind is DeployKind.ROLLBACK else "deploy", environment=environment)
    policy = d.config.environments[environment]
    current = last_ran(d, service, environment)
    previous = current.version if current else None
    order = DeployOrder("(new)", kind, service, environment, version, actor.user_id, reason, previous)
    freezes = freezes_now(d, service, environment)
    gate = promotion_gate(d, kind, service, environment, version)
    ci_gate = gate_for(spec, kind, environment)
    ci = read_ci(d, ci_gate, version, service) if ci_gate is not None else None
    required = policy.approvals
    if kind is DeployKind.ROLLBACK and policy.rollback_approvals is not None:
        required = policy.rollback_approvals
    return Plan(
        kind=kind,
        service=service,
        environment=environment,
        version=version,
        reason=reason,
        required=required,
        timeout_minutes=policy.approval_timeout_minutes,
        lock_name=catalog.lock_name(service, environment),
        provider=describe_provider(d, spec, service, order),
        previous_version=previous,
        hotfix=hotfix and (bool(freezes) or (gate is not None and not gate.passed)) and kind is DeployKind.DEPLOY,
        freezes=freezes,
        link=change_link(spec, service, environment, version, previous),
        rollback_of=rollback_of,
        gate=gate,
        ci=ci,
        checklist=checklist(d, kind, environment, gate, ci),
    )


def checklist(
    d: DeployDeps, kind: DeployKind, environment: str, gate: PromotionGate | None, ci: CiReading | None = None
) -> tuple[ChecklistItem, ...]:
    """``environments.<env>.checklist`` for a deploy's approval request, the items bound to a gate ticked by opsbot when
    the gate passed: the promotion gate, and CI when it is green already at request time (CI that turns green while
    the request waits ticks them then, ``ci_gate.CiWaits.green``). Rollbacks have none: they restore a version that ran
    there, as the incident's way out (the promotion gate skips them too)."""
    if kind is not DeployKind.DEPLOY:
        return ()
    proofs: dict[str, str] = {}
    if gate is not None and gate.passed:
        proofs["promotion"] = gate.proof
    if ci is not None and ci.report is not None and ci.report.green:
        proofs["ci"] = ci_proof(ci.gate.repo, ci.ref, ci.report.summary)
    # A gate's item waits for that gate only where it applies to this request: the promotion gate when it passed or
    # refuses (a --hotfix past it leaves its item to people, knowingly), CI where the service's CI gate covers the
    # environment. Elsewhere the item is one people tick.
    applies = {"promotion": gate is not None and gate.passed, "ci": ci is not None}
    items = []
    for item in d.config.environments[environment].checklist:
        bound = item.satisfied_by if item.satisfied_by and applies.get(item.satisfied_by) else None
        items.append(ChecklistItem(item.item, bound, proofs.get(bound) if bound else None))
    return tuple(items)


def ci_proof(repo: str, ref: str, summary: str) -> str:
    """What a CI-ticked checklist item says: "CI green on owner/name at v1.2.3: ✅ 5 of 5 checks passed"."""
    return f"CI green on {repo} at {ref}: {summary}"
