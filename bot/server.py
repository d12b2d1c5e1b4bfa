"""gunicorn, started from `opsbot serve`: each worker builds its own app after the fork."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from bot.settings import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class RootLogger(Logger):  # type: ignore[misc]
    """gunicorn's error and access logs through the root logger, so ``LOG_FORMAT`` shapes them like every other line."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            logger.handlers.clear()
            logger.propagate = True


def child_exit(server: Any, worker: Any) -> None:
    """A gunicorn worker ended: its live gauges leave the scrape (prometheus_client's multiprocess mode)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


class OpsbotServer(BaseApplication):  # type: ignore[misc]
    """gunicorn with threads: Bolt acks on the request thread and works on its own pool."""

    def __init__(self, settings: Settings, embedded_redis: bool) -> None:
        self.settings = settings
        self.embedded_redis = embedded_redis
        super().__init__()

    def load_config(self) -> None:
        # An embedded Redis lives in one process: several workers would hold different locks.
        workers = 1 if self.embedded_redis else max(1, self.settings.web_concurrency)
        options: dict[str, Any] = {
            "bind": f"0.0.0.0:{self.settings.port}",
            "workers": workers,
            "worker_class": "gthread",
            "threads": 8,
            "timeout": 30,
            "graceful_timeout": 20,
            "keepalive": 5,
            "accesslog": "-",
            "errorlog": "-",
            "loglevel": self.settings.log_level.lower(),
            "proc_name": "opsbot",
            "logger_class": RootLogger,
            "child_exit": child_exit,
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        # An ack is a few hundred microseconds of Python, but it needs the GIL while the pool's threads run commands:
        # each time it waits, it waits up to the switch interval (CPython's default: 5 ms), several times a request.
        sys.setswitchinterval(self.settings.opsbot_gil_switch_ms / 1000)
        from bot.web import make_wsgi_app
        from bot.wiring import build_services

        services = build_services(self.settings, allow_embedded_redis=self.embedded_redis)
        if services.local_worker is not None:  # no `opsbot worker` in a single process: deliver and reconcile here
            from bot.background import Background

            Background(services).start()
        # Commands' work in other processes, so that acks never wait behind it for the GIL; not with an embedded Redis,
        # which lives in this process alone.
        count = 0 if self.embedded_redis else self.settings.opsbot_work_processes
        if count == 0:
            return make_wsgi_app(self.settings, services)
        from bot.work_processes import WorkProcesses

        work = WorkProcesses(
            self.settings, count, config=services.config, audit=services.adapters.audit, nice=self.settings.opsbot_listener_nice
        )
        work.start_processes()
        atexit.register(work.close)
        return make_wsgi_app(self.settings, services, install=work.install)


def serve(settings: Settings, *, embedded_redis: bool = False) -> None:
    """Run until stopped. Metrics: every worker writes its samples under ``PROMETHEUS_MULTIPROC_DIR`` (a fresh
    temporary folder unless it is set; it must be set before prometheus_client is first imported) and a scrape of
    ``/metrics``, whichever worker answers it, adds them up."""
    own_folder = not os.environ.get(MULTIPROC_ENV)
    if own_folder:
        os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="opsbot-metrics-")
    arbiter = os.getpid()
    try:
        OpsbotServer(settings, embedded_redis).run()
    finally:
        # A gunicorn worker leaves through here too (its exit raises SystemExit up the stack it was forked on): only the
        # arbiter removes the folder, which the other workers and their replacements still write to.
        if own_folder and os.getpid() == arbiter:
            shutil.rmtree(os.environ.pop(MULTIPROC_ENV), ignore_errors=True)
