"""Messages shared by every family: help, usage and errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar


@dataclass(frozen=True)
class HelpEntry:
    usage: str
    summary: str
    role: str


@dataclass(frozen=True)
class HelpMessage:
    template: ClassVar[str] = "common/help"
    entries: list[HelpEntry]
    roles: list[str]
    hidden: int = 0
    unreadable: list[str] = field(default_factory=list)  # user groups Slack would not show: "S0SRE: …"
    where: list[str] = field(default_factory=list)  # environments' own roles: "deployer: not in production"


@dataclass(frozen=True)
class SubcommandHelp:
    template: ClassVar[str] = "common/help_one"
    entry: HelpEntry
    allowed: bool


@dataclass(frozen=True)
class ErrorNotice:
    """A failure the user can act on; ``kind`` picks the icon, ``usage`` the usage line."""

    template: ClassVar[str] = "errors/error"
    kind: str
    message: str
    usage: str | None = None
    reference: str | None = None


@dataclass(frozen=True)
class Notice:
    """A one-line answer with an icon."""

    template: ClassVar[str] = "common/notice"
    text: str
    icon: str = "✅"
    details: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WouldHappen:
    """One step of a dry run: ``label`` (plain text), what would happen (plain text, escaped when shown) and the
    people it names (Slack user or user-group IDs, shown as mentions that notify nobody in an ephemeral reply)."""

    label: str
    text: str
    people: tuple[str, ...] = ()


@dataclass(frozen=True)
class DryRunReport:
    """What a mutating command would do, step by step, having changed nothing (``--dry-run``).

    ``refused`` is the refusal the command would meet now (a held lock, no such flag …), or None when it would go
    ahead."""

    template: ClassVar[str] = "common/dry_run"
    title: str
    steps: list[WouldHappen]
    refused: str | None = None
    changes: bool = True  # False: the command would change nothing (the flag is already as asked)
