"""The health family's ports: the engine that runs checks, and the store of watch state shared by replicas."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from bot.domain.health.model import HealthReport
from bot.domain.locks.ports import Lease


class HealthProbe(Protocol):
    """Runs a service's configured health checks (and its version endpoint) concurrently."""

    def check(self, service: str, environment: str) -> HealthReport: ...


@runtime_checkable
class HealthFanout(Protocol):
    """A probe that can check many services at once under one concurrency cap (`/ops health all`)."""

    def check_many(self, targets: list[tuple[str, str]]) -> list[HealthReport]: ...


class WatchStore(Protocol):
    """Health watch state shared by every replica. Only the holder of a watch's lease may write it,
    so a replica whose lease ran out cannot overwrite (or announce over) a newer one."""

    def lease(self, watch: str, ttl_seconds: float) -> Lease | None:
        """Take the watch's lease if nobody holds it; None when another replica is ticking it."""
        ...

    def release(self, lease: Lease) -> None: ...

    def load(self, watch: str) -> dict[str, Any] | None: ...

    def save(self, lease: Lease, data: dict[str, Any]) -> bool:
        """Store ``data`` only if ``lease`` still holds the watch; False otherwise."""
        ...

    def silence(self, watch: str, until: datetime, by: str) -> None:
        """Mute the watch's bad news until ``until``."""
        ...

    def silence_of(self, watch: str) -> tuple[datetime, str] | None:
        """(until, by) of the watch's silence, if one was set and has not been cleaned up."""
        ...
