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
    """Answers 'may this user act in this role?' from config lists and Slack user groups."""

    def __init__(self, roles: dict[str, list[str]], groups: GroupDirectory) -> None:
        self._roles = {Role(name): list(principals) for name, principals in roles.items()}
        self._groups = groups

    def _listed(self, user_id: str, role: Role, fresh_within: float | None, unreadable: list[str] | None) -> bool:
        principals = self._roles.get(role, [])
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

    def has(self, user_id: str, role: Role, *, fresh_within: float | None = None, unreadable: list[str] | None = None) -> bool:
        """Whether ``user_id`` holds ``role`` directly, through a group, or through a stronger role.

        ``fresh_within`` (seconds): group memberships known for longer are read from Slack again (a vote uses
        ``VOTE_FRESHNESS_SECONDS``). Raises OpsError/Unavailable when a group that decides it cannot be read, unless
        ``unreadable`` is given: then that group counts as not holding it and a note is added to the list.
        """
        # Direct listings first: they need no Slack call.
        for granting in sorted(IMPLIED_BY[role]):
            principals = self._roles.get(granting, [])
            if "*" in principals or user_id in principals:
                return True
        return any(self._listed(user_id, granting, fresh_within, unreadable) for granting in sorted(IMPLIED_BY[role]))

    def readable_roles_of(self, user_id: str) -> tuple[set[Role], list[str]]:
        """The roles ``user_id`` holds as far as Slack lets opsbot read, and one note per user group it could not
        read (e.g. "S0SRE: `missing_scope`"): `/ops help` answers with what it knows instead of failing whole."""
        unreadable: list[str] = []
        roles = {role for role in Role if self.has(user_id, role, unreadable=unreadable)}
        return roles, unreadable

    def roles_of(self, user_id: str) -> set[Role]:  # raises when a deciding group cannot be read
        return {role for role in Role if self.has(user_id, role)}

    def require(self, actor: Actor, role: Role, action: str, detail: str = "") -> None:
        """Raise NotPermitted naming ``role`` unless the actor holds it."""
        if not self.has(actor.user_id, role):
            raise NotPermitted(role.value, action, detail)
