"""Roles from the ops config, checked the same way for Slack, the console and tests."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.domain.shared.errors import NotPermitted, OpsError
from bot.domain.shared.ports import GroupDirectory


class Role(StrEnum):
    ADMIN = "admin"
    APPROVER = "approver"
    DEPLOYER = "deployer"
    VIEWER = "viewer"


# An admin may do everything; approvers and deployers may also look.
IMPLIED_BY = {
    Role.ADMIN: {Role.ADMIN},
    Role.APPROVER: {Role.APPROVER, Role.ADMIN},
    Role.DEPLOYER: {Role.DEPLOYER, Role.ADMIN},
    Role.VIEWER: {Role.VIEWER, Role.APPROVER, Role.DEPLOYER, Role.ADMIN},
}


@dataclass(frozen=True)
class Actor:
    """Who is acting, and from where."""

    user_id: str
    channel_id: str | None = None
    source: str = "slack"
    request_id: str | None = None
    message_ts: str | None = None  # a click: the message that carried the button (in ``channel_id``)


class Policy:
    """Answers 'may this user act in this role (in this environment)?' from config lists and Slack user groups.

    ``environments`` maps an environment to the roles it sets itself (``environments.<env>.roles`` in the config):
    there, such a role's list replaces the global one, so it can narrow (only S0SRE deploys to production) or widen
    (interns deploy to staging) it. Roles an environment does not set follow the global lists. ``viewer`` is global.
    """

    def __init__(
        self, roles: dict[str, list[str]], groups: GroupDirectory, environments: dict[str, dict[str, list[str]]] | None = None
    ) -> None:
        self._roles = {Role(name): list(principals) for name, principals in roles.items()}
        self._by_environment = {
            env: {Role(name): list(principals) for name, principals in overrides.items()}
            for env, overrides in (environments or {}).items()
        }
        self._groups = groups

    def _principals(self, role: Role, environment: str | None) -> list[str]:
        overrides = self._by_environment.get(environment or "", {})
        return overrides[role] if role in overrides else self._roles.get(role, [])

    def _listed(
        self, user_id: str, role: Role, environment: str | None, fresh_within: float | None, unreadable: list[str] | None
    ) -> bool:
        principals = self._principals(role, environment)
        if "*" in principals or user_id in principals:
            return True
        return any(p.startswith("S") and self._in_group(user_id, p, fresh_within, unreadable) for p in principals)

    def _in_group(self, user_id: str, group: str, fresh_within: float | None, unreadable: list[str] | None) -> bool:
        """Membership of ``group``; a group Slack will not show raises, or (with ``unreadable``) is noted and skipped."""
        try:
            return user_id in self._groups.members(group, fresh_within)
        except OpsError as exc:
            if unreadable is None:
                raise
            note = f"{group}: {exc.message}"
            if note not in unreadable:
                unreadable.append(note)
            return False

    def has(
        self,
        user_id: str,
        role: Role,
        *,
        environment: str | None = None,
        fresh_within: float | None = None,
        unreadable: list[str] | None = None,
    ) -> bool:
        """Whether ``user_id`` holds ``role`` directly, through a group, or through a stronger role — in
        ``environment`` when given (its own lists where it sets them), else globally.

        ``fresh_within`` (seconds): group memberships known for longer are read from Slack again (a vote uses
        ``VOTE_FRESHNESS_SECONDS``). Raises OpsError/Unavailable when a group that decides it cannot be read, unless
        ``unreadable`` is given: then that group counts as not holding it and a note is added to the list.
        """
        # Direct listings first: they need no Slack call.
        for granting in sorted(IMPLIED_BY[role]):
            principals = self._principals(granting, environment)
            if "*" in principals or user_id in principals:
                return True
        return any(
            self._listed(user_id, granting, environment, fresh_within, unreadable) for granting in sorted(IMPLIED_BY[role])
        )

    def principals(self, role: Role, environment: str | None = None) -> list[str]:
        """The users and user groups listed for ``role`` (in ``environment``, where it sets its own), as configured."""
        return list(self._principals(role, environment))

    @property
    def environments(self) -> list[str]:
        """The environments that set roles of their own."""
        return list(self._by_environment)

    def has_somewhere(self, user_id: str, role: Role, *, unreadable: list[str] | None = None) -> bool:
        """Whether ``user_id`` holds ``role`` globally or in an environment that sets its own roles: the gate before a
        command knows its environment (which it then checks with ``require(…, environment=…)``)."""
        if self.has(user_id, role, unreadable=unreadable):
            return True
        return any(self.has(user_id, role, environment=env, unreadable=unreadable) for env in self._by_environment)

    def where(self, user_id: str, role: Role, *, unreadable: list[str] | None = None) -> tuple[list[str], list[str]]:
        """Of the environments that set their own roles: those where ``user_id`` holds ``role``, and those where not."""
        held = [env for env in self._by_environment if self.has(user_id, role, environment=env, unreadable=unreadable)]
        return held, [env for env in self._by_environment if env not in held]

    def readable_roles_of(self, user_id: str) -> tuple[set[Role], list[str]]:
        """The roles ``user_id`` holds (globally or in some environment) as far as Slack lets opsbot read, and one note
        per user group it could not read (e.g. "S0SRE: `missing_scope`"): `/ops help` answers with what it knows
        instead of failing whole."""
        unreadable: list[str] = []
        roles = {role for role in Role if self.has_somewhere(user_id, role, unreadable=unreadable)}
        return roles, unreadable

    def roles_of(self, user_id: str) -> set[Role]:  # raises when a deciding group cannot be read
        return {role for role in Role if self.has(user_id, role)}

    def require(self, actor: Actor, role: Role, action: str, detail: str = "", *, environment: str | None = None) -> None:
        """Raise NotPermitted naming ``role`` (and ``environment``, when given) unless the actor holds it there."""
        if not self.has(actor.user_id, role, environment=environment):
            raise NotPermitted(role.value, action, detail, environment=environment)

    def require_somewhere(self, actor: Actor, role: Role, action: str) -> None:
        """Raise NotPermitted unless the actor holds ``role`` globally or in some environment."""
        if not self.has_somewhere(actor.user_id, role):
            raise NotPermitted(role.value, action)
