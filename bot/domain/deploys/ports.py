"""The deploys family's ports: where deploys and freezes are kept, and the providers that run a deploy."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from bot.domain.deploys.model import Deploy, DeployOrder, DeployState, Freeze, ProviderResult
from bot.domain.shared.ports import UnitOfWork


class DeployRepository(Protocol):
    """Deploy records and ad-hoc freezes, inside one unit of work. Every state change is a compare-and-set on the row."""

    def create(self, deploy: Deploy) -> None: ...

    def get(self, deploy_id: str) -> Deploy | None: ...

    def transition(self, deploy_id: str, allowed: frozenset[DeployState], to: DeployState, **changes: Any) -> Deploy | None:
        """Move the deploy to ``to`` (with ``changes``) only if its state is in ``allowed``; None otherwise."""
        ...

    def update(self, deploy_id: str, **changes: Any) -> None: ...

    def history(self, service: str | None, environment: str | None, limit: int) -> list[Deploy]:
        """Newest first."""
        ...

    def last_ran(self, service: str, environment: str) -> Deploy | None:
        """The latest deploy or rollback that reached the provider and recorded a result."""
        ...

    def last_good(self, service: str, environment: str, *, before: datetime, other_than: str) -> Deploy | None:
        """The latest succeeded deploy or rollback that started before ``before``, of a version other than ``other_than``."""
        ...

    def abandon_older(self, lock_name: str, fence: int, now: datetime) -> list[Deploy]:
        """Mark live deploys whose lock fence is below ``fence`` as lock_lost: their lock is gone."""
        ...

    def add_freeze(
        self, scope: str, target: str, reason: str, created_by: str, created_at: datetime, ends_at: datetime
    ) -> Freeze: ...

    def active_freezes(self, now: datetime) -> list[Freeze]: ...

    def lift_freezes(self, scope: str, target: str, now: datetime) -> int:
        """End the active freezes on ``target`` now; how many there were."""
        ...


class DeploysUnitOfWork(UnitOfWork, Protocol):
    @property
    def deploys(self) -> DeployRepository: ...


class DeployProvider(Protocol):
    """Runs a deploy: a local program, a webhook, a GitHub Actions workflow …"""

    def describe(self, order: DeployOrder) -> str:
        """What ``deploy`` would do, for dry runs (never including secrets)."""
        ...

    def deploy(self, order: DeployOrder) -> ProviderResult:
        """Deploy and wait for the outcome; failures are results, not exceptions."""
        ...


class DeployProviders(Protocol):
    def for_spec(self, spec: Any) -> DeployProvider:
        """The provider for a service's ``deploy:`` config."""
        ...
