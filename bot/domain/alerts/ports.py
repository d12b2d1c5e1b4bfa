"""The alerts family's ports: where alert groups are kept, and Alertmanager's silences API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.domain.alerts.model import AlertGroup
from bot.domain.shared.ports import UnitOfWork


class AlertGroupRepository(Protocol):
    """Alert groups inside one unit of work, one row per Alertmanager ``groupKey``."""

    def get(self, group_id: str) -> AlertGroup | None: ...

    def get_for_update(self, group_id: str) -> AlertGroup | None:
        """The group, its row locked until the unit of work ends."""
        ...

    def by_key_for_update(self, group_key: str) -> AlertGroup | None:
        """The group Alertmanager calls ``group_key``, its row locked: notifications of one group take turns."""
        ...

    def add(self, group: AlertGroup) -> None:
        """Store a new group, unless one with its ``group_key`` exists (a concurrent first notification): then nothing."""
        ...

    def save(self, group: AlertGroup) -> None:
        """Store every field of ``group`` (its id names the row)."""
        ...


class AlertsUnitOfWork(UnitOfWork, Protocol):
    @property
    def alert_groups(self) -> AlertGroupRepository: ...


@dataclass(frozen=True)
class SilenceRequest:
    """A silence for Alertmanager's ``POST /api/v2/silences``: equality matchers on labels, a window, who and why."""

    matchers: dict[str, str]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str


class Silences(Protocol):
    """Alertmanager's silences (API v2)."""

    def create(self, silence: SilenceRequest) -> str:
        """Create ``silence``; its id. Raises ``Unavailable`` ("Alertmanager") when it cannot be reached or answers
        5xx, ``Refused`` when it rejects the silence (4xx, with its reason)."""
        ...
