"""``bot.jobs.execute``: the callable every opsbot job in RQ names, kept at this path for jobs already queued.

Reminders, expiries and watch ticks may sit in Redis for hours, across an upgrade; they all name
this path. `opsbot worker` (``bot.adapters.redis.jobs.OpsWorker``) recognizes it and runs the job
through its own dispatcher, so this function itself only runs under a plain `rq worker`, where
opsbot's dependencies do not exist: it says so instead of guessing.
"""

from __future__ import annotations

from typing import Any


def execute(name: str, payload: dict[str, Any], key: str | None = None) -> None:
    """Refuse to run outside `opsbot worker`; raises RuntimeError naming the job."""
    raise RuntimeError(
        f"the opsbot job {name!r} must run on `opsbot worker`, which builds opsbot's dependencies; "
        "a plain `rq worker` cannot run it"
    )
