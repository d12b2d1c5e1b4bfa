"""What the Home tab shows: one view per person (``templates/home/home.yml.j2``), published with ``views.publish``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from bot.domain.home.model import ActionRow, ApprovalRow, DeployRow, FreezeRow, HomeNotice, IncidentRow, KillRow
from bot.domain.locks.ports import LockInfo


@dataclass(frozen=True)
class HomeView:
    """One person's Home tab. Each list holds at most ``model.ROWS`` items; ``*_more`` counts the rest ("and N more").

    ``unavailable`` names what could not be read (e.g. "Deploy locks: Redis is unreachable right now"): the rest is
    still shown. ``refreshing`` is False when Home cannot refresh by itself (Redis, which remembers viewers, is away).
    """

    template: ClassVar[str] = "home/home"
    modal: ClassVar[bool] = True  # rendered as a view (``Renderer.render_view``), not a message: up to 100 blocks
    user: str
    now: datetime
    incidents: list[IncidentRow]
    incidents_more: int
    approvals: list[ApprovalRow]
    approvals_more: int
    deploys: list[DeployRow]
    deploys_more: int
    locks: list[LockInfo]
    locks_more: int
    freezes: list[FreezeRow]
    freezes_more: int
    kills: list[KillRow]
    kills_more: int
    actions: list[ActionRow]
    notice: HomeNotice | None = None
    unavailable: list[str] = field(default_factory=list)
    refreshing: bool = True
    permitted: bool = True  # False: the person holds no opsbot role; Home says so and shows nothing else
