"""Background jobs: RQ on the shared Redis in production, an in-process runner for the console.

A job is a name and a JSON payload. The worker (`opsbot worker`) runs ``execute``, which hands the
job to the dispatcher: same services, same error handling, same audit as a command.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job

from bot.domain.shared.errors import Unavailable
from bot.domain.shared.ports import Clock

if TYPE_CHECKING:
    from bot.wiring import AppServices

log = logging.getLogger("opsbot.jobs")
JOB_FUNCTION = "bot.jobs.execute"
KEY_TTL_SECONDS = 7 * 24 * 3600
# RQ stops a job after 180 s by default; a deploy runs its provider (with its own timeout) and then
# watches the service for minutes. This bound only catches a job that is stuck for good.
JOB_TIMEOUT_SECONDS = 4 * 3600

# The worker process builds its services once at start (`opsbot worker`) and every job uses them.
_worker_services: AppServices | None = None


def use_services(services: AppServices | None) -> None:
    """Set the services jobs run with in this process."""
    global _worker_services
    _worker_services = services


def execute(name: str, payload: dict[str, Any], key: str | None = None) -> None:
    """What RQ runs: one registered job, with audit and typed errors like any command."""
    if _worker_services is None:
        from bot.settings import Settings
        from bot.wiring import build_services

        use_services(build_services(Settings()))
    assert _worker_services is not None
    if key is not None and isinstance(_worker_services.jobs, RqJobs):
        _worker_services.jobs.release(key)  # running now: the same key may be submitted again
    _worker_services.dispatcher.run_job(name, payload)


class RqJobs:
    """Jobs in RQ: they survive restarts, and each runs on exactly one worker."""

    def __init__(self, connection: redis.Redis, queue_name: str = "opsbot", prefix: str = "opsbot:") -> None:
        self._redis = connection
        self.queue = Queue(queue_name, connection=connection)
        self._prefix = prefix

    def _claim(self, key: str | None, ttl: int) -> bool:
        if key is None:
            return True
        return bool(self._redis.set(f"{self._prefix}job-key:{key}", "1", nx=True, ex=ttl))

    def _job_id(self, key: str | None) -> str | None:
        # RQ accepts only letters, digits, '-' and '_' in job ids: derive one from the key.
        return None if key is None else "k-" + hashlib.sha256(f"{self.queue.name}\0{key}".encode()).hexdigest()[:40]

    def submit(self, name: str, payload: dict[str, Any], *, key: str | None = None) -> None:
        try:
            if self._claim(key, KEY_TTL_SECONDS):
                self.queue.enqueue(JOB_FUNCTION, name, payload, key, job_id=self._job_id(key), result_ttl=3600, failure_ttl=7 * 86400,
                                   job_timeout=JOB_TIMEOUT_SECONDS)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise Unavailable("Redis", f"queueing {name}: {type(exc).__name__}") from None

    def schedule(self, at: datetime, name: str, payload: dict[str, Any], *, key: str | None = None) -> None:
        delay = max(int((at - datetime.now(timezone.utc)).total_seconds()), 0)
        # RQ keeps whole seconds and would run a job up to a second early: round up instead.
        at = datetime.fromtimestamp(math.ceil(at.timestamp()), tz=timezone.utc)
        try:
            if self._claim(key, delay + KEY_TTL_SECONDS):
                self.queue.enqueue_at(at, JOB_FUNCTION, name, payload, key, job_id=self._job_id(key), result_ttl=3600, failure_ttl=7 * 86400,
                                      job_timeout=JOB_TIMEOUT_SECONDS)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise Unavailable("Redis", f"scheduling {name}: {type(exc).__name__}") from None

    def release(self, key: str) -> None:
        self._redis.delete(f"{self._prefix}job-key:{key}")

    def cancel(self, key: str) -> None:
        try:
            self.release(key)
            job_id = self._job_id(key)
            assert job_id is not None
            try:
                job = Job.fetch(job_id, connection=self._redis)
            except NoSuchJobError:
                return
            self.queue.scheduled_job_registry.remove(job)
            job.delete()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise Unavailable("Redis", f"cancelling a job: {type(exc).__name__}") from None


class InProcessJobs:
    """Jobs on threads of this process, for the console and single-process use: nothing survives a restart."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._run: Callable[[str, dict[str, Any]], None] | None = None
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="opsbot-job")
        self._pending: set[Future[Any]] = set()
        self._scheduled: list[tuple[datetime, int, str, dict[str, Any], str | None]] = []
        self._keys: set[str] = set()
        self._order = itertools.count()
        self._guard = threading.Condition()
        self._stopped = False
        threading.Thread(target=self._timer, name="opsbot-job-timer", daemon=True).start()

    def bind(self, run: Callable[[str, dict[str, Any]], None]) -> None:
        """Set what runs a job (the dispatcher's ``run_job``), once the services exist."""
        self._run = run

    def submit(self, name: str, payload: dict[str, Any], *, key: str | None = None) -> None:
        with self._guard:
            if key is not None:
                if key in self._keys:
                    return
                self._keys.add(key)
        self._start(name, payload, key)

    def schedule(self, at: datetime, name: str, payload: dict[str, Any], *, key: str | None = None) -> None:
        with self._guard:
            if key is not None:
                if key in self._keys:
                    return
                self._keys.add(key)
            heapq.heappush(self._scheduled, (at, next(self._order), name, payload, key))
            self._guard.notify_all()

    def cancel(self, key: str) -> None:
        with self._guard:
            self._keys.discard(key)
            self._scheduled = [item for item in self._scheduled if item[4] != key]
            heapq.heapify(self._scheduled)

    def _start(self, name: str, payload: dict[str, Any], key: str | None) -> None:
        def work() -> None:
            with self._guard:
                if key is not None:
                    self._keys.discard(key)
            if self._run is None:
                log.error("job %s dropped: no runner bound", name)
                return
            self._run(name, payload)

        future = self._pool.submit(work)
        with self._guard:
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[Any]) -> None:
        with self._guard:
            self._pending.discard(future)
            self._guard.notify_all()

    def run_due(self) -> int:
        """Start every scheduled job whose time has come; how many started."""
        due = []
        with self._guard:
            now = self._clock.now()
            while self._scheduled and self._scheduled[0][0] <= now:
                due.append(heapq.heappop(self._scheduled))
        for _, _, name, payload, key in due:
            self._start(name, payload, key)
        return len(due)

    def _timer(self) -> None:
        while not self._stopped:
            self.run_due()
            time.sleep(0.2)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Whether all started jobs finished within ``timeout`` (scheduled ones not yet due do not count)."""
        deadline = time.monotonic() + timeout
        with self._guard:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._guard.wait(min(remaining, 0.05))
        return True

    def scheduled(self) -> list[tuple[datetime, str, dict[str, Any]]]:
        with self._guard:
            return [(at, name, payload) for at, _, name, payload, _ in sorted(self._scheduled, key=lambda item: (item[0], item[1]))]

    def close(self) -> None:
        self._stopped = True
        self._pool.shutdown(wait=False, cancel_futures=True)
