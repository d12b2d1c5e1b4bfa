"""What the alerts family posts and answers; each names its template in templates/alerts/."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from bot.domain.alerts.model import AlertGroup

SHOWN_ALERTS = 10  # alerts listed in one message; the rest are counted ("and 12 more")


@dataclass(frozen=True)
class AlertGroupMessage:
    """The alert group's message in the alerts channel, edited in place by every notification of its episode."""

    template: ClassVar[str] = "alerts/group"
    group: AlertGroup
    silence_minutes: int
    can_roll_back: bool  # the group names a service opsbot deploys

    @property
    def shown(self) -> list[object]:
        return list(self.group.firing[:SHOWN_ALERTS] or self.group.alerts[:SHOWN_ALERTS])

    @property
    def more(self) -> int:
        listed = self.group.firing or self.group.alerts
        return max(0, len(listed) - SHOWN_ALERTS) + self.group.truncated_alerts


@dataclass(frozen=True)
class Silenced:
    """The answer to "Silence 1h"."""

    template: ClassVar[str] = "alerts/silenced"
    group: AlertGroup
    silence_id: str
    until: datetime
    matchers: dict[str, str]
