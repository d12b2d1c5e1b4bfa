"""`opsbot worker`: builds the worker's runtime once and runs the RQ queue through its dispatcher, outages included.

RQ's ``SimpleWorker`` runs each job in this process (no fork), so the connections and families built
here serve every job; the worker hands opsbot's jobs to ``Dispatcher.run_job`` (same typed errors and
audit as a command). Besides its jobs it delivers waiting effects and takes part in the reconciler's
rounds (``bot.background``). When Redis goes away the worker does not exit: it waits with backoff and
carries on with a fresh RQ worker once Redis answers. SIGTERM (a rolling restart) lets a running deploy
finish within ``durability.shutdown_grace_seconds``, then hands it over to the reconciler and exits.
"""

from __future__ import annotations

import logging
import time

import redis

from bot.adapters.redis.jobs import OpsWorker, RqJobs
from bot.background import Background
from bot.config import OpsConfig
from bot.domain.shared.errors import Unavailable
from bot.settings import MissingSetting, Settings
from bot.wiring import build_services

log = logging.getLogger("opsbot.worker")
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, Unavailable)
HEALTHY_RUN_SECONDS = 60.0  # a worker loop that ran this long before ending starts the backoff afresh


def run_worker(settings: Settings, config: OpsConfig, *, burst: bool = False) -> None:
    """Work the shared queue until stopped (or, with ``burst``, until it is empty). Raises MissingSetting."""
    if not settings.redis_url:
        raise MissingSetting("REDIS_URL", "the worker takes its jobs from the shared Redis")
    runtime = build_services(settings, config=config)
    jobs = runtime.adapters.jobs
    if not isinstance(jobs, RqJobs):
        raise MissingSetting("REDIS_URL", "the worker needs a real Redis, not the embedded one")
    shutdown = runtime.adapters.shutdown
    if settings.opsbot_metrics_port and not burst:
        from prometheus_client import start_http_server

        start_http_server(settings.opsbot_metrics_port, registry=runtime.metrics.registry)
        log.info("metrics on port %d", settings.opsbot_metrics_port)
    background = None if burst else Background(runtime).start()
    wait = 0.5
    worker: OpsWorker | None = None
    try:
        while not shutdown.requested:
            try:
                if worker is not None and worker.scheduler is not None:
                    # The ended loop's scheduler lock would keep the fresh worker's scheduler (a new name) out for
                    # up to a minute, its TTL: scheduled jobs (hold ends, reminders) would wait that long.
                    worker.scheduler.release_locks()  # type: ignore[no-untyped-call]
                for name in runtime.dispatcher.startup_jobs():  # keyed: a second replica starting adds nothing
                    jobs.submit(name, {}, key=f"startup:{name}")
                worker = OpsWorker(jobs, runtime.dispatcher.run_job, on_stop=shutdown.request)
                started = time.monotonic()
                worker.work(with_scheduler=True, burst=burst)
                if burst or shutdown.requested:
                    return
                # RQ's loop also ends on its own, without raising, when Redis fails mid-job ("found an unhandled
                # exception, quitting...") or times out: that is an outage to ride out, not a reason to exit.
                if time.monotonic() - started > HEALTHY_RUN_SECONDS:
                    wait = 0.5
                log.warning("RQ's worker loop ended (Redis went away?); a fresh one starts in %.1f s", wait)
            except REDIS_ERRORS as exc:
                log.warning("Redis went away (%s); the worker carries on once it is back (next try in %.1f s)", exc, wait)
            time.sleep(wait)
            wait = min(wait * 2, 10.0)
    finally:
        if background is not None:
            background.stop()
