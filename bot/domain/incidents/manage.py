"""`/ops incident role`, `ack`, `list` and `freeze`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from bot.domain.incidents.common import (
    change,
    get,
    here,
    number,
    open_incidents,
    record,
    refresh,
    refresh_in,
    require_commander,
    require_open,
    require_participant,
    still_waiting,
)
from bot.domain.incidents.deps import IncidentDeps
from bot.domain.incidents.freezes import IncidentFreezes
from bot.domain.incidents.messages import Frozen, IncidentList, Note
from bot.domain.incidents.model import FrozenLock, Incident, IncidentRole, Kind
from bot.domain.incidents.ports import IncidentsUnitOfWork
from bot.domain.incidents.reminders import Reminders
from bot.domain.shared import catalog
from bot.domain.shared.commands import Args, expect, no_args, person
from bot.domain.shared.errors import Conflict, NotFound, NotPermitted, OpsError, UsageError
from bot.domain.shared.policy import Actor, Role
from bot.domain.shared.ports import Reply

ROLE_USAGE = "incident role <commander|comms|scribe> @user"
FREEZE_USAGE = "incident freeze [environment …]"


@dataclass(frozen=True)
class AssignRole:
    role: IncidentRole
    user: str


@dataclass(frozen=True)
class Acknowledge:
    pass


@dataclass(frozen=True)
class ListIncidents:
    pass


@dataclass(frozen=True)
class FreezeDeploys:
    environments: tuple[str, ...] = ()


def parse_role(args: Args) -> AssignRole:
    role, who = expect(args, ROLE_USAGE, required=2)
    roles = [r.value for r in IncidentRole]
    if role.lower() not in roles:
        raise UsageError(
            f"`{role[:20]}` is not an incident role; use one of {', '.join(f'`{r}`' for r in roles)}.", f"/ops {ROLE_USAGE}"
        )
    return AssignRole(IncidentRole(role.lower()), person(who, args.people, argument="@user", usage=f"/ops {ROLE_USAGE}"))


def parse_ack(args: Args) -> Acknowledge:
    no_args(args)
    return Acknowledge()


def parse_list(args: Args) -> ListIncidents:
    no_args(args)
    return ListIncidents()


def parse_freeze(args: Args) -> FreezeDeploys:
    return FreezeDeploys(tuple(env.lower() for env in args.positional))


class Management:
    """Incident roles, acknowledging, the open list, and freezing deploys of the incident's services."""

    def __init__(self, deps: IncidentDeps, reminders: Reminders, freezes: IncidentFreezes) -> None:
        self._d = deps
        self._reminders = reminders
        self._freezes = freezes

    def role(self, command: AssignRole, actor: Actor) -> Reply:
        d = self._d
        incident = here(d, actor)
        require_open(incident)
        require_commander(d, actor, incident, "incident role")
        before, after = change(d, incident.id, lambda i: i.with_role(command.role, command.user).with_participants(command.user))
        details = []
        try:
            refused = d.conversations.invite(after.channel_id, [command.user])
            details += [f"{user} could not be invited ({reason})" for user, reason in refused.items()]
        except OpsError as exc:
            details.append(f"could not invite them ({exc.message})")
        previous = before.holder(command.role)
        record(d, actor, after, Kind.ROLE, f"{command.role.value}: @{command.user}" + (f" (was @{previous})" if previous else ""))
        details += refresh(d, after)
        return Reply(
            Note("🎖️", command.user, f"is now the incident {command.role.value}.", by=actor.user_id, details=details),
            visibility="in_channel",
        )

    def ack(self, command: Acknowledge, actor: Actor) -> Reply:
        return self.acknowledge(actor, here(self._d, actor))

    def ack_click(self, actor: Actor, incident_id: str) -> Reply:
        """The escalation message's Acknowledge button (it carried only the incident id)."""
        incident = get(self._d, found) if (found := number(incident_id)) else None
        if incident is None:
            raise NotFound("incident", incident_id[:20])
        return self.acknowledge(actor, incident, replace_original=True)

    def acknowledge(self, actor: Actor, incident: Incident, *, replace_original: bool = False) -> Reply:
        d = self._d
        require_open(incident)
        require_participant(d, actor, incident, "incident ack")
        now, user = d.clock.now(), actor.user_id

        def ack(current: Incident) -> Incident:
            if current.acknowledged_at is not None:
                raise Conflict(
                    f"{current.ref} was already acknowledged by @{current.acknowledged_by} at {current.acknowledged_at:%H:%M} UTC."
                )
            return replace(current, acknowledged_at=now, acknowledged_by=user).with_participants(user)

        def stop(uow: IncidentsUnitOfWork, _: Incident, after: Incident) -> None:
            # In the acknowledgement's transaction: Redis going away cannot leave it acknowledged and still escalating.
            self._reminders.paging.acknowledged(uow, after)
            self._reminders.stop_escalation(after, uow=uow)
            record(d, actor, after, Kind.ACK, "acknowledged; escalation stopped", uow=uow)
            refresh_in(uow, d, after)
            done.append(uow)

        done: list[IncidentsUnitOfWork] = []
        change(d, incident.id, ack, then=stop)
        details = still_waiting(done[0].pending)
        return Reply(
            Note("👀", user, "acknowledged the incident; no further escalation.", details=details),
            visibility="in_channel",
            replace_original=replace_original,
        )

    def list(self, command: ListIncidents, actor: Actor) -> Reply:
        return Reply(IncidentList(open_incidents(self._d), self._d.clock.now()))

    def freeze(self, command: FreezeDeploys, actor: Actor) -> Reply:
        d = self._d
        incident = here(d, actor)
        require_open(incident)
        user = actor.user_id
        if user != incident.commander and not d.policy.has(user, Role.DEPLOYER):
            raise NotPermitted("deployer", "incident freeze", f"or be the commander of {incident.ref}")
        if not incident.services:
            raise UsageError(f"{incident.ref} names no service, so there is nothing to freeze; declare incidents with --service.")
        services = d.config.services
        targets = [
            (service, env)
            for service in incident.services
            for env in services[service].environments
            if not command.environments or env in command.environments
        ]
        for env in command.environments:
            if not any(e == env for _, e in targets):
                known = sorted({e for s in incident.services for e in services[s].environments})
                raise NotFound("environment", env, catalog.suggest(env, known), known=known)
        # A freeze lock an admin broke since (`/ops unlock`) or that ran out is no longer a freeze: take it again.
        frozen_names = {lock.name for lock in incident.frozen if self._freezes.holds(lock)}
        taken: list[FrozenLock] = []
        already, held = [], []
        for service, env in targets:
            name = catalog.lock_name(service, env)
            if name in frozen_names:
                already.append(name)
                continue
            lock = self._freezes.take(incident, name, user)
            if lock is None:
                holder = d.locks.holder(name)
                held.append(f"{name} (held by @{holder.holder}: {holder.purpose})" if holder else name)
            else:
                taken.append(lock)
        if taken:
            retaken = {lock.name for lock in taken}
            _, incident = change(
                d, incident.id, lambda i: replace(i, frozen=tuple(f for f in i.frozen if f.name not in retaken) + tuple(taken))
            )
            record(d, actor, incident, Kind.FREEZE, "deploys frozen: " + ", ".join(lock.name for lock in taken))
        until = d.clock.now() + timedelta(hours=d.config.incidents.freeze_hours)
        outcome = "ok" if not held else "partial"
        return Reply(
            Frozen(incident, [lock.name for lock in taken], already, held, until), visibility="in_channel", outcome=outcome
        )
