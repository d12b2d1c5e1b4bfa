"""`opsbot worker`: builds the worker's runtime once and runs the RQ queue through its dispatcher.

RQ's ``SimpleWorker`` runs each job in this process (no fork), so the connections and families built
here serve every job; the worker hands opsbot's jobs to ``Dispatcher.run_job`` (same typed errors
and audit as a command). Every worker submits the families' startup jobs, keyed, so replicas do not
pile them up.
"""

from __future__ import annotations

from bot.adapters.redis.jobs import OpsWorker, RqJobs
from bot.config import OpsConfig
from bot.settings import MissingSetting, Settings
from bot.wiring import build_services


def run_worker(settings: Settings, config: OpsConfig, *, burst: bool = False) -> None:
    """Work the shared queue until stopped (or, with ``burst``, until it is empty). Raises MissingSetting."""
    if not settings.redis_url:
        raise MissingSetting("REDIS_URL", "the worker takes its jobs from the shared Redis")
    runtime = build_services(settings, config=config)
    jobs = runtime.adapters.jobs
    if not isinstance(jobs, RqJobs):
        raise MissingSetting("REDIS_URL", "the worker needs a real Redis, not the embedded one")
    for name in runtime.dispatcher.startup_jobs():  # keyed: a second replica starting adds nothing
        jobs.submit(name, {}, key=f"startup:{name}")
    OpsWorker(jobs, runtime.dispatcher.run_job).work(with_scheduler=True, burst=burst)
