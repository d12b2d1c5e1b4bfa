"""In-memory fakes of the flag ports (and of approvals and service events), on top of tests/fakes.py."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime

from bot.config import OpsConfig
from bot.domain import registry
from bot.domain.approvals.service import ApprovalRequest, ApprovalState, Rule, Transition, Vote
from bot.domain.shared.context import Services
from bot.domain.shared.errors import Unavailable
from bot.domain.flags.ports import Apply, FlagChange, FlagState
from bot.domain.shared.ports import MessageRef, ServiceEvent
from tests.fakes import fake_services
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


class FakeFlagHistory:
    """Changes in a list; one process-wide lock stands in for the database row lock."""

    def __init__(self) -> None:
        self.changes: list[FlagChange] = []
        self._lock = threading.RLock()

    def record_change(self, provider: str, flag: str, environment: str, apply: Apply) -> FlagChange | None:
        with self._lock:
            last = next((c for c in reversed(self.changes) if (c.provider, c.flag, c.environment) == (provider, flag, environment)), None)
            change = apply(last)
            if change is not None:
                self.changes.append(change)
            return change

    def latest(self, provider: str, flags: Iterable[str]) -> dict[tuple[str, str], FlagChange]:
        wanted = set(flags)
        return {(c.flag, c.environment): c for c in self.changes if c.provider == provider and c.flag in wanted}

    def recent(self, provider: str, flag: str, limit: int = 5) -> list[FlagChange]:
        return [c for c in reversed(self.changes) if c.provider == provider and c.flag == flag][:limit]

    def get(self, change_id: str) -> FlagChange | None:
        return next((c for c in self.changes if c.id == change_id), None)

    def attach_message(self, change_id: str, channel: str, ts: str) -> None:
        self.changes = [replace(c, message_channel=channel, message_ts=ts) if c.id == change_id else c for c in self.changes]


class FakeEvents:
    def __init__(self) -> None:
        self.events: list[ServiceEvent] = []

    def publish(self, event: ServiceEvent) -> None:
        self.events.append(event)


class FakeApprovalStore:
    def __init__(self) -> None:
        self.requests: dict[str, ApprovalRequest] = {}
        self.votes: dict[str, list[Vote]] = {}

    def create(self, request: ApprovalRequest) -> None:
        self.requests[request.id], self.votes[request.id] = request, []

    def get(self, request_id: str) -> tuple[ApprovalRequest, list[Vote]] | None:
        request = self.requests.get(request_id)
        return None if request is None else (request, list(self.votes[request_id]))

    def attach_message(self, request_id: str, ref: MessageRef) -> None:
        self.requests[request_id] = replace(self.requests[request_id], channel=ref.channel, message_ts=ref.ts)

    def decide(self, request_id: str, vote: Vote | None, now: datetime, rule: Rule) -> Transition:
        request, votes = self.requests[request_id], self.votes[request_id]
        verdict = rule(request, votes)
        if vote is not None and verdict.keep_vote:
            votes.append(vote)
        after = replace(request, state=verdict.state, decided_at=now) if verdict.state is not request.state else request
        self.requests[request_id] = after
        return Transition(after, list(votes), request.state)

    def pending(self) -> list[ApprovalRequest]:
        return [r for r in self.requests.values() if r.state is ApprovalState.PENDING]


def flag_services(config: OpsConfig, provider: FakeFlagProvider, clock: FrozenClock | None = None) -> Services:
    """Services on fakes only (tests/fakes.py), with the flag ports, events, approvals and the flag approval kinds."""
    return fake_services(config, clock, approvals=FakeApprovalStore(), approval_kinds=registry.approval_kinds(),
                         events=FakeEvents(), flags=provider, flag_history=FakeFlagHistory())
