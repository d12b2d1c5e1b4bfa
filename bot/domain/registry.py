"""Every `/ops` subcommand, family by family. A new family adds one line here."""

from __future__ import annotations

from typing import Any

from bot.domain.approvals import service as approvals

from bot.domain.audit import service as audit

from bot.domain.deploys import requests as deploys

from bot.domain.deploys import execution

from bot.domain.flags import commands as flags

from bot.domain.deploys import freezes

from bot.domain.health import service as health

from bot.domain.deploys import history

from bot.domain import incidents

from bot.domain.locks import service as locks

from bot.domain.deploys import rollbacks
from bot.domain.shared.commands import Subcommand
from bot.domain.dispatch import JobSpec

FAMILIES = [locks, audit, approvals, health, deploys, rollbacks, execution, freezes, history, flags, incidents]


def subcommands() -> list[Subcommand[Any]]:
    """All subcommands except help, which the dispatcher adds."""
    return [spec for family in FAMILIES for spec in family.COMMANDS]


def jobs() -> list[JobSpec]:
    """Every background job the families registered."""
    return [job for family in FAMILIES for job in getattr(family, "JOBS", [])]


def startup_jobs() -> list[str]:
    """Jobs every `opsbot worker` submits when it starts (e.g. starting background watches)."""
    return [name for family in FAMILIES for name in getattr(family, "STARTUP_JOBS", [])]


def approval_kinds() -> dict[str, approvals.ApprovalKind]:
    """What each family does when its approval requests are decided."""
    return {kind.name: kind for family in FAMILIES for kind in getattr(family, "APPROVAL_KINDS", [])}
