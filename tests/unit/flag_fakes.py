"""In-memory fakes of the flag ports (and of approvals and service events), on top of tests/fakes.py."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from bot.config import OpsConfig
from bot.domain.flags.model import FlagChange, FlagState
from bot.domain.flags.ports import FlagProvider
from bot.domain.shared.errors import Unavailable
from tests.fakes import FakeDatabase, World, fake_world
from tests.support import FrozenClock


class FakeFlagProvider:
    """Flags in a dict. ``interfere`` runs once before a compare-and-set (an outside writer); ``down`` fails calls."""

    kind = "fake"

    def __init__(self, flags: dict[tuple[str, str], FlagState], kill_switch: bool = True) -> None:
        self.flags = dict(flags)
        self.kill_switch = kill_switch
        self.writes: list[tuple[str, str, FlagState]] = []
        self.interfere: list[Callable[[], None]] = []
        self.down: str | None = None

    def _check(self) -> None:
        if self.down:
            raise Unavailable("The fake provider", self.down)

    def state(self, name: str, environment: str) -> FlagState | None:
        self._check()
        return self.flags.get((name, environment))

    def names(self, environment: str) -> list[str]:
        return sorted(n for n, e in self.flags if e == environment)

    def list_flags(self, environments: list[str], contains: str | None, limit: int) -> dict[str, dict[str, FlagState]]:
        self._check()
        found: dict[str, dict[str, FlagState]] = {}
        for (name, env), state in sorted(self.flags.items()):
            if env in environments and (not contains or contains in name):
                found.setdefault(name, {})[env] = state
        return {n: found[n] for n in sorted(found)[:limit]}

    def compare_and_set(self, name: str, environment: str, expected: FlagState, new: FlagState) -> bool:
        if self.interfere:
            self.interfere.pop(0)()
        self._check()
        if self.flags.get((name, environment)) != expected:
            return False
        self.flags[(name, environment)] = new
        self.writes.append((name, environment, new))
        return True


class FakeFlagHistoryRepository:
    """Changes in a list; the fake database's lock (held for a whole unit of work) stands in for the head row lock."""

    def __init__(self) -> None:
        self.changes: list[FlagChange] = []

    def lock_head(self, provider: str, flag: str, environment: str) -> FlagChange | None:
        return next(
            (c for c in reversed(self.changes) if (c.provider, c.flag, c.environment) == (provider, flag, environment)), None
        )

    def add(self, change: FlagChange) -> None:
        self.changes.append(change)

    def latest(self, provider: str, flags: Iterable[str]) -> dict[tuple[str, str], FlagChange]:
        wanted = set(flags)
        return {(c.flag, c.environment): c for c in self.changes if c.provider == provider and c.flag in wanted}

    def recent(self, provider: str, flag: str, limit: int = 5) -> list[FlagChange]:
        return [c for c in reversed(self.changes) if c.provider == provider and c.flag == flag][:limit]

    def get(self, change_id: str) -> FlagChange | None:
        return next((c for c in self.changes if c.id == change_id), None)

    def attach_message(self, change_id: str, channel: str, ts: str) -> None:
        self.changes = [replace(c, message_channel=channel, message_ts=ts) if c.id == change_id else c for c in self.changes]


class FlagWorld:
    """The flag family on fakes, with each fake at hand: ``flags`` (the provider), ``flag_history``, ``approvals`` (the
    approval repository), ``notifier``, ``events``, ``audit``; ``families`` and ``dispatcher`` from the real wiring."""

    def __init__(self, world: World, db: FakeDatabase, provider: Any, history: FakeFlagHistoryRepository) -> None:
        self.world = world
        self.families = world.families
        self.dispatcher = world.dispatcher
        self.flags = provider
        self.flag_history = history
        self.approvals = db.approvals
        self.notifier, self.events, self.audit = world.notifier, world.events, world.audit


def flag_services(config: OpsConfig, provider: FlagProvider, clock: FrozenClock | None = None) -> FlagWorld:
    """The families on fakes only (tests/fakes.py), with the flag provider and opsbot's flag history."""
    db = FakeDatabase()
    history = FakeFlagHistoryRepository()
    db.repositories["flag_history"] = history
    return FlagWorld(fake_world(config, clock, db=db, flags=provider), db, provider, history)
