"""What the flag commands show: lists, details, changes (old → new, who, why) and the loud kill alert."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from bot.domain.flags.model import FlagChange, FlagState


@dataclass(frozen=True)
class StateIn:
    """A flag's state in one environment (None: the flag does not exist there)."""

    environment: str
    state: FlagState | None


@dataclass(frozen=True)
class FlagRow:
    name: str
    service: str | None
    states: list[StateIn]
    last: FlagChange | None


@dataclass(frozen=True)
class FlagList:
    template: ClassVar[str] = "flags/list"
    rows: list[FlagRow]
    filter: str | None
    more: bool
    provider: str
    now: datetime


@dataclass(frozen=True)
class EnvironmentState:
    environment: str
    state: FlagState | None
    last: FlagChange | None
    rules: str


@dataclass(frozen=True)
class FlagDetail:
    template: ClassVar[str] = "flags/show"
    name: str
    service: str | None
    provider: str
    environments: list[EnvironmentState]
    history: list[FlagChange]
    now: datetime


@dataclass(frozen=True)
class FlagChanged:
    """A change that happened: who, what, old → new, why, and who approved it."""

    template: ClassVar[str] = "flags/changed"
    change: FlagChange
    service: str | None
    announced_in: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class FlagUnchanged:
    """Nothing to do: the flag already is what was asked (often because someone just did it)."""

    template: ClassVar[str] = "flags/unchanged"
    flag: str
    environment: str
    state: FlagState
    last: FlagChange | None
    why: str
    now: datetime


@dataclass(frozen=True)
class KillAnnouncement:
    """Posted in the alerts channel: who killed what and why, with an Undo button until it is undone."""

    template: ClassVar[str] = "flags/killed"
    change: FlagChange
    service: str | None
    undone: FlagChange | None = None


@dataclass(frozen=True)
class ApprovalAsked:
    """Told to the requester: the change waits for approval, where, and why."""

    template: ClassVar[str] = "flags/approval_asked"
    flag: str
    environment: str
    action: str
    before: FlagState
    after: FlagState
    reasons: list[str]
    required: int
    channel: str


@dataclass(frozen=True)
class ApprovedChangeFailed:
    """Posted where the approval was asked when the approved change could not be applied."""

    template: ClassVar[str] = "flags/approved_failed"
    flag: str
    environment: str
    action: str
    requester: str
    error: str
