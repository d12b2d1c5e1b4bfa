"""gunicorn, started from `opsbot serve`: each worker builds its own app after the fork."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from bot.settings import Settings


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
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from bot.web import make_wsgi_app
        from bot.wiring import build_services

        services = build_services(self.settings, allow_embedded_redis=self.embedded_redis)
        if services.local_worker is not None:  # no `opsbot worker` in a single process: deliver and reconcile here
            from bot.background import Background

            Background(services).start()
        return make_wsgi_app(self.settings, services)


def serve(settings: Settings, *, embedded_redis: bool = False) -> None:
    """Run until stopped."""
    OpsbotServer(settings, embedded_redis).run()
