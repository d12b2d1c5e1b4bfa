"""Jobs in RQ on the shared Redis: they survive restarts, and each runs on exactly one `opsbot worker`.

Every job RQ stores names the callable ``bot.jobs.execute`` with ``(name, payload, key)``. The
worker (``OpsWorker``) runs those through the dispatcher it was built with, so a job gets the same
dependencies, typed errors and audit as a command, and no module keeps services in a global. Jobs
queued by earlier versions of opsbot name the same callable and run the same way.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis
from rq import Queue, SimpleWorker
from rq.exceptions import NoSuchJobError
from rq.job import Job

from bot.adapters.metrics import Metrics
from bot.domain.shared.errors import Unavailable

log = logging.getLogger("opsbot.jobs")
JOB_FUNCTION = "bot.jobs.execute"
KEY_TTL_SECONDS = 7 * 24 * 3600
# RQ stops a job after 180 s by default; a deploy runs its provider (with its own timeout) and then
# watches the service for minutes. This bound only catches a job that is stuck for good.
JOB_TIMEOUT_SECONDS = 4 * 3600
JobRunner = Callable[[str, dict[str, Any]], Any]


class RqJobs:
    """The ``Jobs`` port on RQ. A key is claimed in Redis while its job waits, so a second submit is a no-op."""

    def __init__(
        self, connection: redis.Redis, queue_name: str = "opsbot", prefix: str = "opsbot:", *, metrics: Metrics | None = None
    ) -> None:
        self._redis = connection
        self.metrics = metrics
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
                self.queue.enqueue(
                    JOB_FUNCTION,
                    name,
                    payload,
                    key,
                    job_id=self._job_id(key),
                    result_ttl=3600,
                    failure_ttl=7 * 86400,
                    job_timeout=JOB_TIMEOUT_SECONDS,
                )
                if self.metrics is not None:
                    self.metrics.jobs_queued.labels(name).inc()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise Unavailable("Redis", f"queueing {name}: {type(exc).__name__}") from None

    def schedule(self, at: datetime, name: str, payload: dict[str, Any], *, key: str | None = None) -> None:
        delay = max(int((at - datetime.now(UTC)).total_seconds()), 0)
        # RQ keeps whole seconds and would run a job up to a second early: round up instead.
        at = datetime.fromtimestamp(math.ceil(at.timestamp()), tz=UTC)
        try:
            if self._claim(key, delay + KEY_TTL_SECONDS):
                self.queue.enqueue_at(
                    at,
                    JOB_FUNCTION,
                    name,
                    payload,
                    key,
                    job_id=self._job_id(key),
                    result_ttl=3600,
                    failure_ttl=7 * 86400,
                    job_timeout=JOB_TIMEOUT_SECONDS,
                )
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise Unavailable("Redis", f"scheduling {name}: {type(exc).__name__}") from None

    def release(self, key: str) -> None:
        """Let ``key`` be submitted again (its job is running now)."""
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


class OpsJob(Job):
    """An RQ job that, on an `opsbot worker`, runs through the worker's dispatcher instead of a global."""

    run_job: JobRunner | None = None
    release_key: Callable[[str], None] | None = None
    metrics: Metrics | None = None

    def perform(self) -> Any:
        if self.func_name != JOB_FUNCTION or self.run_job is None:
            return super().perform()
        name, payload, *rest = self.args
        key = rest[0] if rest else None
        if key is not None and self.release_key is not None:
            self.release_key(key)  # running now: the same key may be submitted again
        reply = self.run_job(name, payload)
        if self.metrics is not None and getattr(reply, "outcome", "ok") == "error":
            self.metrics.jobs_failed.labels(name).inc()
        return reply


SCHEDULER_CHECK_SECONDS = 15


class OpsWorker(SimpleWorker):
    """RQ's ``SimpleWorker`` (jobs run in this process, reusing its connections) handing opsbot's jobs to ``run_job``.

    ``on_stop`` is told when the worker is asked to stop (SIGTERM/SIGINT), before RQ's own warm shutdown, so work in
    flight can hand over instead of running to its end.
    """

    def __init__(self, jobs: RqJobs, run_job: JobRunner, *, on_stop: Callable[[], None] = lambda: None, **kwargs: Any) -> None:
        # RQ restarts a scheduler process that died (a Redis outage kills it) and takes over the scheduler lock of a
        # worker that was SIGKILLed only in its maintenance, every 10 minutes by default: scheduled jobs (expiries,
        # reminders) would stop that long. Every SCHEDULER_CHECK_SECONDS instead.
        kwargs.setdefault("maintenance_interval", SCHEDULER_CHECK_SECONDS)
        super().__init__([jobs.queue], connection=jobs.queue.connection, job_class=OpsJob, **kwargs)
        self._jobs = jobs
        self._run_job = run_job
        self._on_stop = on_stop

    @property
    def dequeue_timeout(self) -> int:
        """Seconds an idle worker blocks on the queue between maintenance checks (RQ's default: worker_ttl - 15, 405).

        RQ runs its maintenance (a dead scheduler restarted) only between dequeues: with RQ's default an idle
        worker would notice a scheduler killed by a Redis outage up to seven minutes late.
        """
        return SCHEDULER_CHECK_SECONDS

    def request_stop(self, signum: Any, frame: Any) -> None:
        self._on_stop()
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]

    def perform_job(self, job: Job, queue: Queue, execution: Any) -> bool:
        if isinstance(job, OpsJob):
            job.run_job = self._run_job
            job.release_key = self._jobs.release
            job.metrics = self._jobs.metrics
        done = bool(super().perform_job(job, queue, execution))
        if not done and self._jobs.metrics is not None:  # RQ itself saw it fail (an exception, a timeout)
            name = job.args[0] if isinstance(job, OpsJob) and job.args else job.func_name
            self._jobs.metrics.jobs_failed.labels(str(name)).inc()
        return done
