"""The deploys family's ports: where deploys and freezes are kept, and the providers that run a deploy."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from bot.config import CiGate
from bot.domain.approvals.ports import ApprovalsUnitOfWork
from bot.domain.deploys.ci import CiReport
from bot.domain.deploys.model import Deploy, DeployOrder, DeployState, Freeze, ProviderResult, StopSignal
from bot.domain.shared.errors import Conflict


class TargetBusy(Conflict):
    """Another deploy or rollback of this service and environment is not over (the database keeps them apart)."""

    def __init__(self, service: str, environment: str, live: Deploy | None) -> None:
        what = (
            f"`{live.id}` ({live.kind.value} of {live.version}, {live.state.value}, requested by <@{live.requester}>)"
            if live
            else "another one"
        )
        super().__init__(
            f"`{service}` in {environment} already has a deploy or rollback that is not over: {what}. "
            "Wait for it to finish, or cancel it with `/ops cancel <id>`."
        )
        self.live = live


class DeployRepository(Protocol):
    """Deploy records and ad-hoc freezes, inside one unit of work. Every state change is a compare-and-set on the row."""

    def create(self, deploy: Deploy) -> None:
        """Store a new deploy; raises TargetBusy when another one of its target is not over."""
        ...

    def live(self, service: str, environment: str) -> Deploy | None:
        """The deploy or rollback of this target that is not over, if any (at most one)."""
        ...

    def beat(self, deploy_id: str, at: datetime) -> Deploy | None:
        """Record a running deploy's heartbeat at ``at``; the row as it is now (None when it is no longer running)."""
        ...

    def stale_runs(self, before: datetime) -> list[Deploy]:
        """Running deploys with no heartbeat since ``before``."""
        ...

    def waiting_to_start(self, before: datetime) -> list[Deploy]:
        """Approved deploys that have waited to start since before ``before``."""
        ...

    def finished_since(self, since: datetime) -> list[Deploy]:
        """Deploys and rollbacks that ended after ``since`` and had a lock."""
        ...

    def get(self, deploy_id: str) -> Deploy | None: ...

    def waiting_for_ci(self) -> list[Deploy]:
        """Requested or approved deploys whose CI gate is still pending (``ci_state`` = pending), oldest first."""
        ...

    def transition(self, deploy_id: str, allowed: frozenset[DeployState], to: DeployState, **changes: Any) -> Deploy | None:
        """Move the deploy to ``to`` (with ``changes``) only if its state is in ``allowed``; None otherwise."""
        ...

    def update(self, deploy_id: str, **changes: Any) -> None: ...

    def claim_provider_start(self, deploy_id: str, run_started_at: datetime, at: datetime) -> bool:
        """Record that the run which started at ``run_started_at`` calls the provider now, only if that run still
        owns the deploy (running, same start, no provider call recorded). False: the reconciler requeued or settled
        it, or another run took it; the provider must not be called."""
        ...

    def requeue_unstarted(self, deploy_id: str) -> Deploy | None:
        """``running`` → ``approved`` only if no run recorded a provider call; None otherwise."""
        ...

    def history(self, service: str | None, environment: str | None, limit: int) -> list[Deploy]:
        """Newest first."""
        ...

    def last_ran(self, service: str, environment: str) -> Deploy | None:
        """The latest deploy or rollback that reached the provider and recorded a result."""
        ...

    def last_of_version(self, service: str, environment: str, version: str) -> Deploy | None:
        """The latest deploy or rollback to ``version`` of this target that started (whatever its state now)."""
        ...

    def last_good(self, service: str, environment: str, *, before: datetime, other_than: str) -> Deploy | None:
        """The latest succeeded deploy or rollback that started before ``before``, of a version other than ``other_than``."""
        ...

    def abandon_older(self, lock_name: str, fence: int, now: datetime) -> list[Deploy]:
        """Mark requested or approved deploys whose lock fence is below ``fence`` as lock_lost: their lock is gone."""
        ...

    def add_freeze(
        self, scope: str, target: str, reason: str, created_by: str, created_at: datetime, ends_at: datetime
    ) -> Freeze: ...

    def active_freezes(self, now: datetime) -> list[Freeze]: ...

    def lift_freezes(self, scope: str, target: str, now: datetime) -> int:
        """End the active freezes on ``target`` now; how many there were."""
        ...


class DeploysUnitOfWork(ApprovalsUnitOfWork, Protocol):
    """Deploys, and the approval requests they open in the same transaction."""

    @property
    def deploys(self) -> DeployRepository: ...


class DeployProvider(Protocol):
    """Runs a deploy: a local program, a webhook, a GitHub Actions workflow …"""

    def describe(self, order: DeployOrder) -> str:
        """What ``deploy`` would do, for dry runs (never including secrets)."""
        ...

    def deploy(self, order: DeployOrder, stop: StopSignal) -> ProviderResult:
        """Deploy and wait for the outcome; failures are results, not exceptions. When ``stop`` is signalled, stop
        at once (end a local process group; cancel a remote run where the provider can) and say so in the result.
        A provider whose run has a page people can watch tells ``stop.link_found(url)`` as soon as it knows it."""
        ...


class DeployProviders(Protocol):
    def for_spec(self, spec: Any) -> DeployProvider:
        """The provider for a service's ``deploy:`` config."""
        ...

    def end_process(self, description: str) -> bool:
        """End the local process group a run reported (``StopSignal.process_started``) if it is still there, on this
        host; True when it was ended. The reconciler uses it when the worker that ran it died."""
        ...


class CiStatus(Protocol):
    """Reads a version's CI (its commit statuses and check runs) where ``services.<name>.ci`` says."""

    def read(self, gate: CiGate, ref: str, service: str) -> CiReport:
        """Every check of ``ref`` in ``gate.repo`` (the CI gate of ``service``), every page; raises ``CiUnreadable``
        (its ``outcome`` says why: unreachable, unauthorized, forbidden, rate limited with the reset time, unknown
        ref, malformed answer, too many checks).
        The token is read from the environment variable ``gate.token_env`` and never appears in a message."""
        ...
