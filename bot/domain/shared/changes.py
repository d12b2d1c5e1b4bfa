""" "What changed": the recent deploys, rollbacks and flag changes of some services, for an incident's declaration and
a health DOWN alert. Incidents and health sit below deploys and flags, so they read these through this port, which
the adapters implement (SQL reads of the deploy records and of opsbot's flag history)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from bot.config.durations import format_duration
from bot.domain.shared.errors import Unavailable

ChangeKind = Literal["deploy", "rollback", "flag"]


@dataclass(frozen=True)
class RecentChange:
    """One deploy, rollback or flag change of ``service`` in ``environment`` at ``at`` (UTC), by ``actor`` (a user ID).

    ``ref`` is the deploy id or the flag change id: the only thing a button carries. ``state`` is the deploy's state
    (``succeeded``, ``failed`` …) or the flag change's action (``kill``, ``unkill``, ``rollout`` …)."""

    kind: ChangeKind
    service: str
    environment: str
    at: datetime
    actor: str
    ref: str
    state: str
    summary: str  # "v1.2.3 (was v1.2.2)" or "checkout.new-flow killed"
    reason: str = ""

    @property
    def can_roll_back(self) -> bool:
        """A deploy or rollback that ran to an end (the server re-checks that it is still the latest)."""
        return self.kind != "flag" and self.state in ("succeeded", "failed")

    @property
    def can_undo(self) -> bool:
        """A flag kill: its Undo is the kill alert's Undo."""
        return self.kind == "flag" and self.state == "kill"


class RecentChanges(Protocol):
    def of(self, services: Sequence[str], since: datetime, limit: int) -> list[RecentChange]:
        """Deploys and rollbacks that started, and flag changes made, since ``since`` for ``services``: newest first,
        at most ``limit``. Raises ``Unavailable`` when the record cannot be read."""
        ...


class NoRecentChanges:
    """Nothing is recorded (families built on fakes that do not look)."""

    def of(self, services: Sequence[str], since: datetime, limit: int) -> list[RecentChange]:
        return []


LISTED = 10  # changes shown with their buttons; the rest are counted (Slack allows 50 blocks a message)


@dataclass(frozen=True)
class ChangeList:
    """What a message shows of "what changed": ``changes`` newest first, ``more`` not shown, or why it is unknown."""

    services: tuple[str, ...]
    hours: float
    changes: list[RecentChange]
    more: int = 0
    unreadable: str | None = None  # the record could not be read: the message says so rather than failing

    @property
    def window(self) -> str:
        """``24 h``, ``90m``, ``36s``: the look-back in words."""
        if self.hours >= 1 and self.hours == int(self.hours):
            return f"{int(self.hours)} h"
        return format_duration(timedelta(hours=self.hours))


def what_changed(port: RecentChanges, services: Sequence[str], until: datetime, hours: float) -> ChangeList:
    """The changes of ``services`` in the ``hours`` before ``until``; a lost record becomes ``unreadable``."""
    since = until - timedelta(hours=hours)
    try:
        found = port.of(services, since, LISTED + 50)
    except Unavailable as exc:
        return ChangeList(
            tuple(services), hours, [], unreadable=f"{exc.what} could not be read" + (f" ({exc.detail})" if exc.detail else "")
        )
    return ChangeList(tuple(services), hours, found[:LISTED], more=max(0, len(found) - LISTED))
