"""Incident freezes as deploy locks: taking them, lending one to a rollback and taking it back, lifting them.

A freeze is the deploy lock ``deploy/<service>/<env>`` held for the incident, whose lease the incident
records (``Incident.frozen``). Deploys find the lock held and are refused. A rollback, the usual fix,
may take the lock over (``lend``); when it ends, the freeze takes the lock again (``take_back``).
Which incident freezes a lock is known from those recorded leases, never from the lock's purpose text.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from bot.domain.incidents.common import change, open_incidents, post_in_channel, record
from bot.domain.incidents.deps import IncidentDeps
from bot.domain.incidents.messages import Note
from bot.domain.incidents.model import FrozenLock, Incident, Kind
from bot.domain.locks.ports import Lease
from bot.domain.shared.errors import OpsError
from bot.domain.shared.messages import Notice
from bot.domain.shared.policy import Actor
from bot.domain.shared.ports import Message

log = logging.getLogger("opsbot.incidents")


@dataclass(frozen=True)
class Retake:
    """What became of a freeze lent to a rollback once the rollback ended."""

    incident: Incident
    name: str
    frozen: bool  # the freeze holds the lock again
    why_not: str = ""


class IncidentFreezes:
    """The deploy locks incidents hold, and handing one to a rollback and back."""

    def __init__(self, deps: IncidentDeps) -> None:
        self._d = deps

    def take(self, incident: Incident, name: str, holder: str) -> FrozenLock | None:
        """Take ``name`` for the incident's freeze (for ``incidents.freeze_hours`` at most); None when someone holds it."""
        lease = self._d.locks.acquire(
            name,
            holder=holder,
            purpose=f"deploy freeze for {incident.ref}: {incident.title[:80]}",
            ttl_seconds=self._d.config.incidents.freeze_hours * 3600,
        )
        return None if lease is None else FrozenLock(lease.name, lease.token, lease.fence, holder)

    def holds(self, lock: FrozenLock) -> bool:
        """Whether this recorded freeze holds its lock now (not lent to a rollback, not broken by `/ops unlock`, not run out)."""
        return lock.lent_to is None and self._d.locks.is_current(lock.lease)

    def lend(self, actor: Actor, name: str, rollback_id: str) -> Incident | None:
        """Release an open incident's freeze of ``name`` for rollback ``rollback_id``; that incident, or None when no freeze holds it."""
        found = next(
            ((i, lock) for i in open_incidents(self._d) for lock in i.frozen if lock.name == name and self.holds(lock)), None
        )
        if found is None:
            return None
        incident, frozen = found
        lent = replace(frozen, lent_to=rollback_id)

        def mark(current: Incident) -> Incident:
            # Under the row lock: a second rollback asking at the same moment finds the freeze already lent.
            if not current.is_open or frozen not in current.frozen:
                return current
            return replace(current, frozen=tuple(lent if lock == frozen else lock for lock in current.frozen))

        _, incident = change(self._d, incident.id, mark)
        if lent not in incident.frozen:
            return None
        # Not DeployLocks.release: the rollback takes the lock next, so nobody waiting is told it is free.
        self._d.locks.release(frozen.lease)
        self._tell(
            actor,
            incident,
            f"rollback {rollback_id} took over the freeze of {name}; the freeze is taken again when it ends",
            Note(
                "🔓",
                actor.user_id,
                f"asked for rollback {rollback_id}, which takes over the freeze of {name}. "
                "The freeze is taken again when the rollback ends.",
            ),
        )
        return incident

    def take_back(self, actor: Actor, rollback_id: str, lease: Lease | None, ended: str) -> Retake | None:
        """Rollback ``rollback_id`` ended (``ended`` says how): the open incident that lent it a freeze takes the lock again.

        None when no open incident lent it one: the caller releases ``lease`` as usual. Otherwise ``lease`` is released
        here without telling anyone the lock is free, and the freeze takes it; if someone else got it first, the
        incident's channel and timeline say so.
        """
        d = self._d
        found = next(((i, lock) for i in open_incidents(d) for lock in i.frozen if lock.lent_to == rollback_id), None)
        if found is None:
            return None
        incident, lent = found
        if lease is not None:
            d.locks.release(lease)
        if d.locks.is_current(lent.lease):  # the takeover stopped before the freeze's lease was released
            again: FrozenLock | None = replace(lent, lent_to=None)
        else:
            again = self.take(incident, lent.name, lent.holder or incident.commander)

        def settle(current: Incident) -> Incident:
            rest = tuple(lock for lock in current.frozen if lock.lent_to != rollback_id)
            return replace(current, frozen=rest + ((again,) if again is not None and current.is_open else ()))

        _, incident = change(d, incident.id, settle)
        if again is not None and again not in incident.frozen:  # resolved meanwhile, without knowing this lease
            d.deploy_locks.release(again.lease, f"{incident.ref} was resolved")
            return Retake(incident, lent.name, False, f"{incident.ref} was resolved meanwhile")
        if again is not None:
            self._tell(
                actor,
                incident,
                f"deploys frozen again: {lent.name} ({ended})",
                Notice(f"{lent.name} is frozen again for {incident.ref}: {ended}.", icon="🧊"),
            )
            return Retake(incident, lent.name, True)
        holder = d.locks.holder(lent.name)
        why_not = f"held by @{holder.holder} for a {holder.purpose}" if holder else "it changed hands meanwhile"
        self._tell(
            actor,
            incident,
            f"{lent.name} could not be frozen again after rollback {rollback_id}: {why_not}",
            Notice(
                f"{lent.name} could not be frozen again after {ended}: it is {why_not}. "
                "Run `/ops incident freeze` here once it is free.",
                icon="⚠️",
            ),
        )
        return Retake(incident, lent.name, False, why_not)

    def lift(self, actor: Actor, incident: Incident) -> None:
        """Release the deploy locks the incident holds (one broken by an admin, or lent to a rollback, is not its to release)."""
        lifted = []
        for lock in incident.frozen:
            # DeployLocks.release also tells whoever pressed "Notify me when free" on a refused deploy.
            if lock.lent_to is None and self._d.deploy_locks.release(lock.lease, f"{incident.ref} was resolved"):
                lifted.append(lock.name)
        if lifted:
            record(self._d, actor, incident, Kind.FREEZE, "deploy freeze lifted: " + ", ".join(lifted))
        lent = [f"{lock.name} (with rollback {lock.lent_to})" for lock in incident.frozen if lock.lent_to]
        if lent:
            record(
                self._d,
                actor,
                incident,
                Kind.FREEZE,
                "not frozen again after the rollback now that the incident is resolved: " + ", ".join(lent),
            )

    def _tell(self, actor: Actor, incident: Incident, timeline: str, message: Message) -> None:
        """On the timeline and in the incident channel; the lock has already changed hands, so a failure here is only logged."""
        try:
            record(self._d, actor, incident, Kind.FREEZE, timeline)
        except OpsError as exc:
            log.error("could not add to the %s timeline: %s (%s)", incident.ref, timeline, exc.message)
        try:
            post_in_channel(self._d, incident, message)
        except OpsError as exc:
            log.error("could not post in the %s channel: %s (%s)", incident.ref, timeline, exc.message)
