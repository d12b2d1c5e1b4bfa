"""A rollback through an incident freeze: it takes the deploy lock over, and gives it back when it ends.

`/ops incident freeze` holds the deploy locks of the incident's services, so deploys are refused.
A rollback is the usual fix: when an open incident's freeze holds its lock, the rollback takes the
lock over (``acquire``); whenever it ends (succeeded, failed, rejected, expired, cancelled, not
started, lock lost), ``release`` hands the lock back to the freeze instead of freeing it.

Both halves are explicit calls into the incidents family's ``IncidentFreezes`` rather than service
events: the takeover needs an answer before the request goes on; the lock must go back to the freeze
where it is released, before anyone waiting is told it is free; and a rejected or expired request
publishes no event at all.
"""

from __future__ import annotations

import logging

from bot.domain.deploys import support
from bot.domain.deploys.deps import DeployDeps
from bot.domain.deploys.model import Deploy, DeployKind
from bot.domain.incidents.freezes import Retake
from bot.domain.incidents.model import Incident
from bot.domain.locks.ports import Lease
from bot.domain.shared.errors import OpsError
from bot.domain.shared.policy import Actor

log = logging.getLogger("opsbot.deploys")


class FreezeTakeover:
    """Taking a deploy lock for a request, through an incident's freeze when it is a rollback; and giving it back."""

    def __init__(self, deps: DeployDeps) -> None:
        self._d = deps

    def acquire(
        self, actor: Actor, kind: DeployKind, name: str, deploy_id: str, *, purpose: str, ttl_seconds: float
    ) -> tuple[Lease | None, Incident | None]:
        """Take ``name`` for a request; a rollback that finds an open incident's freeze holding it takes it over.

        Returns the lease (None: refused) and the incident whose freeze was taken over.
        """
        locks, freezes = self._d.locks, self._d.incident_freezes

        def take() -> Lease | None:
            return locks.acquire(name, holder=actor.user_id, purpose=purpose, ttl_seconds=ttl_seconds)

        lease = take()
        if lease is not None or kind is not DeployKind.ROLLBACK:
            return lease, None
        incident = freezes.lend(actor, name, deploy_id)
        if incident is None:
            return None, None
        lease = None
        try:
            lease = take()
        finally:
            if lease is None:  # someone took it in the instant it was free (or the lock store failed): the freeze tries again
                try:
                    freezes.take_back(actor, deploy_id, None, f"rollback {deploy_id} could not take the lock")
                except OpsError as exc:
                    log.error("could not give %s back to the freeze of %s: %s", name, incident.ref, exc.message)
        return (lease, incident) if lease is not None else (None, None)

    def taken_over(self, actor: Actor, rollback: Deploy, incident: Incident) -> None:
        """Audit the takeover (the incident's timeline and channel already have it)."""
        support.audit(
            self._d,
            actor,
            "rollback.freeze_taken_over",
            rollback,
            incident=incident.ref,
            lock=rollback.lock_name,
            summary=f"rollback {rollback.id} took over the freeze of {rollback.lock_name}",
        )

    def give_back(self, actor: Actor, deploy: Deploy, why: str) -> Retake | None:
        """If ``deploy`` is a rollback that took over an open incident's freeze, the freeze takes its lock again.

        None when it did not (its lease is left alone); otherwise what became of the freeze, audited.
        """
        if not deploy.is_rollback:
            return None
        retake = self._d.incident_freezes.take_back(actor, deploy.id, deploy.lease, why)
        if retake is not None:
            summary = (
                f"the freeze of {retake.name} was taken back from rollback {deploy.id}"
                if retake.frozen
                else f"the freeze of {retake.name} could not be taken back from rollback {deploy.id}: {retake.why_not}"
            )
            support.audit(
                self._d,
                actor,
                "rollback.freeze_given_back",
                deploy,
                "ok" if retake.frozen else "conflict",
                None if retake.frozen else retake.why_not,
                incident=retake.incident.ref,
                lock=retake.name,
                summary=summary,
            )
        return retake

    def release(self, actor: Actor, deploy: Deploy, why: str) -> None:
        """The request is over: its lock goes back to the freeze it took over, or is released (telling who waits)."""
        if self.give_back(actor, deploy, why) is None:
            self._d.deploy_locks.release(deploy.lease, why)

    def release_quietly(self, actor: Actor, deploy: Deploy, why: str) -> None:
        """``release`` on a failure path, where a second failure must not hide the first."""
        try:
            self.release(actor, deploy, why)
        except OpsError as exc:
            log.error("could not release %s (%s); it will expire by its TTL", deploy.lock_name, exc.message)
