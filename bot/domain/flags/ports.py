"""The flags family's ports: where the flags live, and opsbot's own record of the changes it made.

A ``FlagProvider`` is where applications read their flags (the team's SQL table, Unleash).
The flag history is opsbot's own record of every change it made: who, when, why, old → new. Its
head row per flag and environment, locked for the whole read-decide-write (``lock_head``),
serializes opsbot's changes to one flag in one environment, so two people changing it at once
never lose an update: the later one reads the state the earlier one left.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from bot.domain.flags.model import FlagChange, FlagState
from bot.domain.shared.errors import OpsError
from bot.domain.shared.ports import UnitOfWork


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


class FlagsNotConfigured:
    """The provider when ``flags.provider`` is not set: every use says how to configure one."""

    kill_switch = False

    @property
    def kind(self) -> str:
        raise self._error()

    @staticmethod
    def _error() -> OpsError:
        return OpsError("Flags are not configured here: set `flags.provider` in the ops config (see docs/flags.md).")

    def state(self, name: str, environment: str) -> FlagState | None:
        raise self._error()

    def names(self, environment: str) -> list[str]:
        raise self._error()

    def list_flags(self, environments: list[str], contains: str | None, limit: int) -> dict[str, dict[str, FlagState]]:
        raise self._error()

    def compare_and_set(self, name: str, environment: str, expected: FlagState, new: FlagState) -> bool:
        raise self._error()


class FlagHistoryRepository(Protocol):
    """opsbot's record of flag changes (its own database, not the provider's), inside one unit of work."""

    def lock_head(self, provider: str, flag: str, environment: str) -> FlagChange | None:
        """Lock this flag in this environment until the unit of work ends; the last change recorded for it."""
        ...

    def add(self, change: FlagChange) -> None:
        """Record ``change`` as the newest of its flag and environment."""
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


class FlagsUnitOfWork(UnitOfWork, Protocol):
    @property
    def flag_history(self) -> FlagHistoryRepository: ...
