"""Jobs in this process, for the console and single-process runs: nothing survives a restart.

``InProcessJobs`` is the ``Jobs`` port: it only keeps what was submitted or scheduled. An
``InProcessWorker``, built once the app's dispatcher exists, runs them on a small thread pool, the
way `opsbot worker` runs the RQ queue in production.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

from bot.domain.shared.ports import Clock

log = logging.getLogger("opsbot.jobs")
Queued = tuple[str, dict[str, Any], str | None]


class InProcessJobs:
    """Submitted jobs wait in a queue, scheduled ones in a heap by due time; a key is held until its job starts."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._ready: deque[Queued] = deque()
        self._scheduled: list[tuple[datetime, int, str, dict[str, Any], str | None]] = []
        self._keys: set[str] = set()
        self._order = itertools.count()
        self.changed = threading.Condition()

    def submit(self, name: str, payload: dict[str, Any], *, key: str | None = None) -> None:
        with self.changed:
            if key is not None:
                if key in self._keys:
                    return
                self._keys.add(key)
            self._ready.append((name, payload, key))
            self.changed.notify_all()

    def schedule(self, at: datetime, name: str, payload: dict[str, Any], *, key: str | None = None) -> None:
        with self.changed:
            if key is not None:
                if key in self._keys:
                    return
                self._keys.add(key)
            heapq.heappush(self._scheduled, (at, next(self._order), name, payload, key))
            self.changed.notify_all()

    def cancel(self, key: str) -> None:
        with self.changed:
            self._keys.discard(key)
            self._scheduled = [item for item in self._scheduled if item[4] != key]
            heapq.heapify(self._scheduled)

    def take(self, *, due_only: bool = False) -> list[Queued]:
        """Everything submitted (unless ``due_only``) and every scheduled job whose time has come, removed from the queue.

        Their keys are released: while a job runs, the same key may be submitted again.
        """
        with self.changed:
            taken = [] if due_only else list(self._ready)
            if not due_only:
                self._ready.clear()
            now = self._clock.now()
            while self._scheduled and self._scheduled[0][0] <= now:
                _, _, name, payload, key = heapq.heappop(self._scheduled)
                taken.append((name, payload, key))
            for _, _, key in taken:
                if key is not None:
                    self._keys.discard(key)
            return taken

    def wait_for_work(self, timeout: float) -> None:
        """Block until something is submitted or scheduled, or ``timeout`` seconds pass."""
        with self.changed:
            if not self._ready:
                self.changed.wait(timeout)

    def has_ready(self) -> bool:
        with self.changed:
            return bool(self._ready)

    def scheduled(self) -> list[tuple[datetime, str, dict[str, Any]]]:
        """Jobs waiting for their time, soonest first: (due, name, payload)."""
        with self.changed:
            return [
                (at, name, payload) for at, _, name, payload, _ in sorted(self._scheduled, key=lambda item: (item[0], item[1]))
            ]


class InProcessWorker:
    """Runs an ``InProcessJobs`` queue on threads: submitted jobs at once, scheduled ones when due (checked every 0.2 s)."""

    def __init__(self, jobs: InProcessJobs, run: Callable[[str, dict[str, Any]], Any], *, threads: int = 4) -> None:
        self._jobs = jobs
        self._run = run
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="opsbot-job")
        self._pending: set[Future[Any]] = set()
        self._idle = threading.Condition()
        self._stopped = False
        threading.Thread(target=self._loop, name="opsbot-job-timer", daemon=True).start()

    def _loop(self) -> None:
        while not self._stopped:
            self._jobs.wait_for_work(0.2)
            self.run_ready()

    def run_ready(self) -> int:
        """Start everything submitted and every scheduled job that is due; how many started."""
        return self._start(self._jobs.take())

    def run_due(self) -> int:
        """Start every scheduled job whose time has come (and anything submitted); how many started."""
        return self.run_ready()

    def _start(self, jobs: list[Queued]) -> int:
        for name, payload, _ in jobs:
            try:
                future = self._pool.submit(self._run, name, payload)
            except RuntimeError:  # the pool shut down (close() raced a job falling due): the process is stopping
                if self._stopped:
                    return 0
                raise
            with self._idle:
                self._pending.add(future)
            future.add_done_callback(self._done)
        return len(jobs)

    def _done(self, future: Future[Any]) -> None:
        with self._idle:
            self._pending.discard(future)
            self._idle.notify_all()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Whether all started jobs (and those submitted meanwhile) finished within ``timeout``; scheduled ones not yet due do not count."""
        deadline = time.monotonic() + timeout
        while True:
            self.run_ready()
            with self._idle:
                while self._pending:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._idle.wait(min(remaining, 0.05))
            if not self._jobs.has_ready():
                return True

    def close(self) -> None:
        self._stopped = True
        self._pool.shutdown(wait=False, cancel_futures=True)
