"""Deploy locks as deploys and incidents use them: explain a refusal, release and tell who waited.

"Notify me when free": whoever presses it joins the lock's line (a Redis list, each person once)
and gets a direct message when the lock is released, in the order they asked.
"""

from __future__ import annotations

import logging

from bot.domain.locks.deps import LockDeps
from bot.domain.locks.messages import LockFree, LockRefused, WaitingForLock
from bot.domain.locks.ports import Lease
from bot.domain.shared.errors import Conflict, OpsError
from bot.domain.shared.messages import Notice
from bot.domain.shared.policy import Actor, Role
from bot.domain.shared.ports import Reply

log = logging.getLogger("opsbot.deploys")
WAIT_BUTTON_TTL_SECONDS = 24 * 3600
PENDING_MARGIN_SECONDS = 300  # a pending request holds its lock a little past its expiry, so expiry releases it


class DeployLocks:
    """Refusals with a way to wait, releases that tell who waited, and the "Notify me when free" button."""

    def __init__(self, deps: LockDeps) -> None:
        self._d = deps

    def refusal(self, name: str, wanted: str) -> Reply:
        """The reply to someone whose deploy (or hold) found ``name`` held."""
        held = self._d.locks.holder(name)
        if held is None:  # released between the attempt and this look: say so rather than guess
            raise Conflict("The deploy lock changed hands just now; try again.")
        wait_id = self._d.state.put("lock-wait", {"name": name}, WAIT_BUTTON_TTL_SECONDS)
        return Reply(LockRefused(held, wanted, wait_id, self._d.clock.now()), outcome="conflict")

    def release(self, lease: Lease | None, why: str) -> bool:
        """Release the lock if ``lease`` still holds it, then tell those who waited."""
        if lease is None:
            return False
        released = self._d.locks.release(lease)
        if released:
            self.notify_waiters(lease.name, why)
        return released

    def release_quietly(self, lease: Lease | None, why: str) -> None:
        """Release on a failure path, where a second failure must not hide the first."""
        try:
            self.release(lease, why)
        except OpsError as exc:
            log.error("could not release %s (%s); it will expire by its TTL", lease.name if lease else "?", exc.message)

    def notify_waiters(self, name: str, why: str) -> int:
        """DM everyone waiting for ``name``, in the order they asked; how many were told."""
        told = 0
        for user in self._d.waiters.take_all(name):
            try:
                self._d.notifier.dm(user, LockFree(name, why))
                told += 1
            except OpsError as exc:
                log.warning("could not tell %s that %s is free: %s", user, name, exc.message)
        return told

    def wait_for(self, actor: Actor, wait_id: str) -> Reply:
        """The "Notify me when free" button: join the line, or hear that the lock is already free."""
        self._d.policy.require(actor, Role.VIEWER, "wait for a deploy lock")
        saved = self._d.state.get("lock-wait", wait_id)
        if saved is None:
            raise Conflict("That button has expired; run your command again to see who holds the lock.")
        name = str(saved["name"])
        if self._d.locks.holder(name) is None:
            return Reply(Notice(f"*{name}* is free now: go ahead.", icon="🔓"))
        place = self._d.waiters.add(name, actor.user_id)
        if self._d.locks.holder(name) is None:  # released while we joined: nobody else would tell us
            self.notify_waiters(name, "it was released just as you asked")
        return Reply(WaitingForLock(name, place))
