"""Feature flags: the state of a flag, the record of a change, and the two ports behind them.

A ``FlagProvider`` is where applications read their flags (the team's SQL table, Unleash).
``FlagHistory`` is opsbot's own record of every change it made: who, when, why, old → new. It
also serializes opsbot's changes to one flag in one environment, so two people changing it at
once never lose an update: the later one reads the state the earlier one left.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

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

    def with_(self, **changes: Any) -> "FlagState":
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


class FlagProvider(Protocol):
    """Where the flags live. Adapters map their own failures to ``Unavailable``.

    ``kill_switch`` says whether the provider stores a kill switch of its own (the SQL table's
    ``kill_switch`` column). Without one (Unleash), a kill turns the flag off in the provider and
    opsbot's history remembers that it was a kill and what to restore on unkill.
    """

    kind: str
    kill_switch: bool

    def state(self, name: str, environment: str) -> FlagState | None:
        """The flag's state, or None when there is no such flag."""
        ...

    def names(self, environment: str) -> list[str]:
        """Every flag name in ``environment`` (for close-name suggestions)."""
        ...

    def list_flags(self, environments: list[str], contains: str | None, limit: int) -> dict[str, dict[str, FlagState]]:
        """Up to ``limit`` flags whose name contains ``contains``, by name, then by environment."""
        ...

    def compare_and_set(self, name: str, environment: str, expected: FlagState, new: FlagState) -> bool:
        """Write ``new`` only if the flag is still ``expected``; False (nothing written) otherwise."""
        ...


Apply = Callable[[FlagChange | None], FlagChange | None]


class FlagHistory(Protocol):
    """opsbot's record of flag changes (its own database, not the provider's)."""

    def record_change(self, provider: str, flag: str, environment: str, apply: Apply) -> FlagChange | None:
        """Under a lock on this flag in this environment: run ``apply(last change)``; store what it returns."""
        ...

    def latest(self, provider: str, flags: Iterable[str]) -> dict[tuple[str, str], FlagChange]:
        """The newest change of each of ``flags``, by (flag, environment)."""
        ...

    def recent(self, provider: str, flag: str, limit: int = 5) -> list[FlagChange]:
        """The newest changes of ``flag`` in any environment, newest first."""
        ...

    def get(self, change_id: str) -> FlagChange | None: ...

    def attach_message(self, change_id: str, channel: str, ts: str) -> None:
        """Remember where a change was announced, so the announcement can be updated later."""
        ...

