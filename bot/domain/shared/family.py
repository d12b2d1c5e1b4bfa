"""What a family declares to the app: its `/ops` subcommands, its background jobs, the jobs every worker starts.

The wiring builds each family once with its dependencies and hands the dispatcher the list of their
declarations (``bot.wiring``); nothing is discovered by name or attribute.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.domain.shared.commands import Subcommand
from bot.domain.shared.policy import Actor

JOB_ACTOR = Actor(user_id="opsbot", source="job")


@dataclass(frozen=True)
class JobSpec:
    """A background job: ``run(actor, payload)`` with a JSON-safe payload; ``audited`` jobs leave an audit row."""

    name: str
    run: Callable[[Actor, dict[str, Any]], None]
    audited: bool = True


Repair = Callable[[Actor], list[str]]  # one reconciler step: what it repaired, in words (empty: nothing to do)


@dataclass(frozen=True)
class Family:
    """One family's contribution: subcommands, jobs by name, jobs each `opsbot worker` submits when it starts, and the
    steps of the reconciler's rounds (finishing what a crash or an outage left half-done)."""

    name: str
    commands: Sequence[Subcommand[Any]] = ()
    jobs: Sequence[JobSpec] = ()
    startup_jobs: Sequence[str] = ()
    reconcile: Sequence[Repair] = ()
