"""Every `/ops` subcommand, family by family. A new family adds one line here."""

from __future__ import annotations

from typing import Any

from bot.domain import audit, locks
from bot.domain.commands import Subcommand

FAMILIES = [locks, audit]


def subcommands() -> list[Subcommand[Any]]:
    """All subcommands except help, which the dispatcher adds."""
    return [spec for family in FAMILIES for spec in family.COMMANDS]
