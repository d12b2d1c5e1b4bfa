"""Deploy locks as deploys use them: take one for a request, explain a refusal, release and tell who waited.

"Notify me when free": whoever presses it joins the lock's line (a Redis list, each person once)
and gets a direct message when the lock is released, in the order they asked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from bot.domain.shared.context import Call
from bot.domain.shared.errors import Conflict, OpsError
from bot.domain.shared.messages import Notice
from bot.domain.shared.policy import Role
from bot.domain.shared.ports import Lease, LockInfo, Reply

log = logging.getLogger("opsbot.deploys")
WAIT_BUTTON_TTL_SECONDS = 24 * 3600
PENDING_MARGIN_SECONDS = 300  # a pending request holds its lock a little past its expiry, so expiry releases it


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


def refusal(call: Call, name: str, wanted: str) -> Reply:
    """The reply to someone whose deploy found ``name`` held."""
    held = call.services.locks.holder(name)
    if held is None:  # released between the attempt and this look: say so rather than guess
        raise Conflict("The deploy lock changed hands just now; try again.")
    wait_id = None
    if call.services.lock_waiters is not None:
        wait_id = call.services.state.put("lock-wait", {"name": name}, WAIT_BUTTON_TTL_SECONDS)
    return Reply(LockRefused(held, wanted, wait_id, call.services.clock.now()), outcome="conflict")


def release(call: Call, lease: Lease | None, why: str) -> bool:
    """Release the lock if ``lease`` still holds it, then tell those who waited."""
    if lease is None:
        return False
    released = call.services.locks.release(lease)
    if released:
        notify_waiters(call, lease.name, why)
    return released


def release_quietly(call: Call, lease: Lease | None, why: str) -> None:
    """Release on a failure path, where a second failure must not hide the first."""
    try:
        release(call, lease, why)
    except OpsError as exc:
        log.error("could not release %s (%s); it will expire by its TTL", lease.name if lease else "?", exc.message)


def notify_waiters(call: Call, name: str, why: str) -> int:
    """DM everyone waiting for ``name``, in the order they asked; how many were told."""
    waiters = call.services.lock_waiters
    if waiters is None:
        return 0
    told = 0
    for user in waiters.take_all(name):
        try:
            call.services.notifier.dm(user, LockFree(name, why))
            told += 1
        except OpsError as exc:
            log.warning("could not tell %s that %s is free: %s", user, name, exc.message)
    return told


def wait_for(call: Call, wait_id: str) -> Reply:
    """The "Notify me when free" button: join the line, or hear that the lock is already free."""
    call.services.policy.require(call.actor, Role.VIEWER, "wait for a deploy lock")
    saved = call.services.state.get("lock-wait", wait_id)
    if saved is None:
        raise Conflict("That button has expired; run your command again to see who holds the lock.")
    waiters = call.services.lock_waiters
    if waiters is None:
        raise OpsError("Waiting for locks is not set up on this bot.")
    name = str(saved["name"])
    if call.services.locks.holder(name) is None:
        return Reply(Notice(f"*{name}* is free now: go ahead.", icon="🔓"))
    place = waiters.add(name, call.actor.user_id)
    if call.services.locks.holder(name) is None:  # released while we joined: nobody else would tell us
        notify_waiters(call, name, "it was released just as you asked")
    return Reply(WaitingForLock(name, place))
