"""What the locks family says: held locks, holds taken and broken, refusals, and the line of people waiting."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from bot.domain.locks.ports import LockInfo


@dataclass(frozen=True)
class LockList:
    """Every lock held, in name order; the first ``SHOWN`` are laid out (a message holds at most 50 blocks, and laying
    out hundreds cost `/ops locks` 35 ms of CPU per call with 200 held: bench/ack_latency.py)."""

    template: ClassVar[str] = "locks/list"
    SHOWN: ClassVar[int] = 40
    locks: list[LockInfo]
    now: datetime

    @property
    def shown(self) -> list[LockInfo]:
        return self.locks[: self.SHOWN]

    @property
    def more(self) -> int:
        return max(len(self.locks) - self.SHOWN, 0)


@dataclass(frozen=True)
class LockTaken:
    template: ClassVar[str] = "locks/taken"
    lock: LockInfo
    reason: str


@dataclass(frozen=True)
class LockHeldNotice:
    """Someone else holds the lock: who, for what, since when."""

    template: ClassVar[str] = "locks/held"
    lock: LockInfo
    now: datetime


@dataclass(frozen=True)
class LockBroken:
    """Told to the admin, and to the holder by DM."""

    template: ClassVar[str] = "locks/broken"
    lock: LockInfo
    by: str
    reason: str
    holder_told: bool = True


@dataclass(frozen=True)
class HoldEnded:
    """Posted in the deployments channel when a lock taken by hand runs out."""

    template: ClassVar[str] = "locks/hold_ended"
    name: str
    holder: str
    reason: str


@dataclass(frozen=True)
class LockRefused:
    """Someone else holds the lock: who, what they are doing, since when; and a way to wait."""

    template: ClassVar[str] = "deploy/lock_held"
    lock: LockInfo
    wanted: str
    wait_id: str | None
    now: datetime


@dataclass(frozen=True)
class WaitingForLock:
    template: ClassVar[str] = "deploy/waiting"
    name: str
    place: int


@dataclass(frozen=True)
class LockFree:
    """The direct message a waiter gets."""

    template: ClassVar[str] = "deploy/lock_free"
    name: str
    why: str
