"""HTTP mode: a WSGI app with Slack's endpoint and the probes, served by gunicorn."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot import alertmanager_receiver
from bot.adapters.metrics import CONTENT_TYPE
from bot.adapters.sql.engine import ping as ping_db
from bot.adapters.status_page import STATUS_PATHS, StatusPageApp, StatusPageRenderer
from bot.app import create_app, listener_pool
from bot.domain.shared.errors import Unavailable
from bot.settings import Settings
from bot.wiring import Runtime

log = logging.getLogger("opsbot.web")
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def readiness(services: Runtime) -> dict[str, str]:
    """``ok`` or the reason, for Redis and the database."""
    checks: dict[str, str] = {}
    try:
        services.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:  # any failure means not ready; the reason goes to the probe
        checks["redis"] = f"unreachable: {type(exc).__name__}"
    try:
        ping_db(services.engine)
        checks["database"] = "ok"
    except Unavailable as exc:
        checks["database"] = f"unreachable: {exc.detail}"
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    return checks


def _json(start_response: Callable[..., Any], status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def make_wsgi_app(settings: Settings, services: Runtime, *, install: Callable[[App], None] | None = None) -> WsgiApp:
    """``POST /slack/events`` for Slack; ``GET /healthz`` (alive), ``GET /readyz`` (Redis and database) and
    ``GET /metrics`` (Prometheus); ``POST /alertmanager`` for Alertmanager's webhook (``bot.alertmanager_receiver``);
    ``GET /status`` and ``/status.json``, the public status page (404 unless enabled). ``install(app)`` may replace the
    Bolt app's lazy listener runner (``bot.work_processes``)."""
    bolt = create_app(settings, services, executor=listener_pool(settings.opsbot_listener_nice))
    if install is not None:
        install(bolt)
    slack = SlackRequestHandler(bolt, path="/slack/events")
    status_page = StatusPageApp(services.status_board, StatusPageRenderer(settings.opsbot_templates))

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if path == "/healthz" and method in {"GET", "HEAD"}:
            return _json(start_response, "200 OK", {"status": "ok"})
        if path == "/readyz" and method in {"GET", "HEAD"}:
            checks = readiness(services)
            failing = [name for name, state in checks.items() if state != "ok"]
            if failing:
                return _json(start_response, "503 Service Unavailable", {"status": "not ready", "failing": failing, **checks})
            return _json(start_response, "200 OK", {"status": "ready", **checks})
        if path == "/metrics" and method in {"GET", "HEAD"}:
            data = services.metrics.exposition()
            start_response("200 OK", [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(data)))])
            return [data]
        if path == alertmanager_receiver.PATH:
            return alertmanager_receiver.receive(environ, start_response, settings, services.alerts)
        if path in STATUS_PATHS and method in {"GET", "HEAD"}:
            return status_page(environ, start_response)
        return slack(environ, start_response)

    return app
