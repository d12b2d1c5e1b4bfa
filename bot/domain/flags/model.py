"""Feature flags as the domain sees them: a flag's state in one environment, and one change opsbot made to it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

VERBS = {"on": "turned on", "off": "turned off", "kill": "killed", "unkill": "unkilled", "rollout": "changed the rollout of"}


@dataclass(frozen=True)
class FlagState:
    """One flag in one environment. ``rollout`` is None when targeting is not a plain percentage."""

    enabled: bool
    killed: bool = False
    rollout: int | None = 100

    @property
    def exposure(self) -> int:
        """Percent of traffic that sees the feature; custom targeting counts as everyone (the cautious reading)."""
        if not self.enabled or self.killed:
            return 0
        return 100 if self.rollout is None else self.rollout

    @property
    def percent(self) -> str:
        return "custom targeting" if self.rollout is None else f"{self.rollout}%"

    @property
    def label(self) -> str:
        """``on · 30%``, ``off (rollout 30%)``, ``KILLED (underneath: on · 30%)``."""
        if self.enabled:
            base = f"on · {self.percent}"
        else:
            base = "off (custom targeting)" if self.rollout is None else f"off (rollout {self.rollout}%)"
        return f"KILLED (underneath: {base})" if self.killed else base

    @property
    def icon(self) -> str:
        return "🛑" if self.killed else ("🟢" if self.enabled else "⚪")

    def as_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "killed": self.killed, "rollout": self.rollout}

    def with_(self, **changes: Any) -> FlagState:
        return replace(self, **changes)


@dataclass(frozen=True)
class FlagChange:
    """One change opsbot made to a flag in an environment."""

    id: str
    provider: str
    flag: str
    environment: str
    action: str
    actor: str
    reason: str
    before: FlagState | None
    after: FlagState
    at: datetime
    approved_by: tuple[str, ...] = ()
    message_channel: str | None = None
    message_ts: str | None = None

    @property
    def verb(self) -> str:
        return VERBS.get(self.action, self.action)
