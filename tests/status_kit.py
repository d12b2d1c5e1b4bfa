"""The public status page in tests: a config with watches and the page on, a fixed state, and the real WSGI app served.

``published_state(bot)`` sets the fixed state every status page test starts from: the health watch of ``api`` in
production says WARNING (the page: degraded), ``web``'s says OK (operational), ``worker`` has no watch (unknown), and
INC-1 on ``api`` carries ``SECRET`` in everything internal (title, impact, status texts, what happened) and one
public update, ``PUBLIC_TEXT``; INC-2 on ``web`` was resolved with ``SECRET`` in its summary and ``RESOLVED_TEXT`` public.
"""

from __future__ import annotations

import contextlib
import socketserver
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from bot.adapters.redis.watches import RedisWatchStore
from bot.domain.health.rules import Level, WatchState
from bot.web import make_wsgi_app
from tests.e2e.incident_helpers import declare, posts
from tests.support import CONFIG, Bot, FrozenClock

SECRET = "ZQX-INTERNAL-7731"  # appears in every internal field; never on the page
PUBLIC_TEXT = "Checkout is slow for some customers; we are rolling back a change."
RESOLVED_TEXT = "Images on the web shop load normally again."
TITLE = "Example Corp status"
START = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


def status_config(**page: Any) -> dict[str, Any]:
    """Top-level config changes: health checks and a watch for api and web in production, and the page (``page`` keys)."""
    services = {
        "api": {
            "environments": {
                "staging": {},
                "production": {"health": [{"url": "http://127.0.0.1:9/health"}]},
            }
        },
        "web": {
            "environments": {"staging": {}, "production": {"health": [{"url": "http://127.0.0.1:9/health"}]}},
            "version_pattern": "git_sha",
        },
        "worker": CONFIG["services"]["worker"],
    }
    return {
        "services": services,
        "health": {"watches": [{"services": ["api", "web"], "environments": ["production"]}]},
        "status_page": {"enabled": True, "title": TITLE, **page},
    }


def set_watch(bot: Bot, service: str, environment: str, level: Level, since: datetime) -> None:
    """Store a watch's state the way its tick does: under its lease, through the real Redis adapter."""
    store = RedisWatchStore(bot.services.redis, bot.services.adapters.clock, bot.settings.opsbot_redis_prefix)
    lease = store.lease(f"{service}/{environment}", 30)
    assert lease is not None
    assert store.save(lease, WatchState(level=level, since=since, announced=level, last_tick=since, ticks=5).to_dict())
    store.release(lease)


def published_state(bot: Bot) -> None:
    """The fixed state described in the module docstring (the bot's clock should be a FrozenClock at START)."""
    set_watch(bot, "api", "production", Level.WARNING, START - timedelta(minutes=20))
    set_watch(bot, "web", "production", Level.OK, START - timedelta(days=2))
    channel = declare(bot, f'P1 Checkout {SECRET} title --service api --impact "{SECRET} impact"', user="U0DEV")
    reply = bot.command(
        f'incident update identified "{SECRET} status: bad config from @bob" --what "{SECRET} what" --next 30m '
        f'--public "{PUBLIC_TEXT}"',
        channel=channel.id,
    )
    assert "Update posted" in reply.seen(), reply.seen()
    reply = bot.command(f'incident update monitoring "{SECRET} later status, internal only" --next 30m', channel=channel.id)
    assert "Update posted" in reply.seen(), reply.seen()
    assert len(posts(bot, channel.id, "Incident Update")) == 2
    resolved = declare(bot, f'P2 Web {SECRET} --service web --impact "{SECRET}"', user="U0DEV2")
    reply = bot.command(f'incident resolve "{SECRET} summary" --public "{RESOLVED_TEXT}"', user="U0DEV2", channel=resolved.id)
    assert "is resolved" in reply.seen(), reply.seen()


def fixed_clock() -> FrozenClock:
    return FrozenClock(START)


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    """One thread per connection: a browser's idle pre-opened connection must not hold up its real request."""

    daemon_threads = True
    request_queue_size = 64  # socketserver's 5 drops a crowd's connections (a 1 s SYN retry each)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


@contextlib.contextmanager
def serving(bot: Bot) -> Iterator[str]:
    """``make_wsgi_app`` (what `opsbot serve` runs under gunicorn) on a loopback port; yields its base URL."""
    with serving_app(make_wsgi_app(bot.settings, bot.services)) as base:
        yield base


@contextlib.contextmanager
def serving_app(app: Any) -> Iterator[str]:
    """Any WSGI app on a loopback port, a thread per connection; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, _ThreadingServer, _Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
