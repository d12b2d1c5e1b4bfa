"""Locks: what a held lock looks like, the proof of holding one, and the stores behind them.

A lock is named (``deploy/<service>/<env>``), held by one person or operation at a time for a TTL,
and ordered by a fencing token (``fence``) that grows with every acquisition: a holder whose lock
was broken or ran out can tell, because the current holder's fence is higher (Kleppmann, "How to
do distributed locking", 2016).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

MAX_MANUAL_LOCK = timedelta(days=7)  # the longest hold by hand (`/ops lock … for=`), and the hold after a rollback


@dataclass(frozen=True)
class LockInfo:
    """A held lock as anyone may see it (never its owner token)."""

    name: str
    holder: str
    purpose: str
    since: datetime
    expires_at: datetime
    fence: int


@dataclass(frozen=True)
class Lease:
    """Proof of holding a lock: only the holder has the token; the fence orders holders."""

    name: str
    token: str
    fence: int


class LockStore(Protocol):
    def acquire(self, name: str, *, holder: str, purpose: str, ttl_seconds: float) -> Lease | None:
        """Take the lock if free; None when someone holds it."""
        ...

    def release(self, lease: Lease) -> bool:
        """Release if ``lease`` still holds the lock; False for a stale holder."""
        ...

    def extend(self, lease: Lease, ttl_seconds: float) -> bool:
        """Renew the TTL if ``lease`` still holds the lock."""
        ...

    def is_current(self, lease: Lease) -> bool:
        """Whether ``lease`` is still the holder (the fencing check before recording a result)."""
        ...

    def holder(self, name: str) -> LockInfo | None: ...

    def held(self) -> list[LockInfo]: ...

    def force_release(self, name: str) -> LockInfo | None:
        """Release whoever holds ``name``; returns who that was."""
        ...


class LockWaiters(Protocol):
    """People waiting for a lock to be released, in the order they asked, each once."""

    def add(self, name: str, user: str) -> int:
        """Add ``user``; their place in line (1 = next), unchanged if already waiting."""
        ...

    def take_all(self, name: str) -> list[str]:
        """Everyone waiting for ``name``, in order, removing them."""
        ...
