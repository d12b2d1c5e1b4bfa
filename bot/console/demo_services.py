"""Pretend services for `opsbot console`, so `/ops health` has something real to probe.

Health and version URLs whose host is ``opsbot-demo.invalid`` are answered by a small HTTP server the
console starts on loopback; the console rewrites those URLs to it before building its services.
Nothing else does: ``.invalid`` never resolves (RFC 2606), so in a real deployment such a URL is a
plain "DNS failure" and production code knows nothing of this.

The query string says how to answer, so the config shows what each demo endpoint does:
``code`` (HTTP status, default 200), ``delay_ms`` (answer late), ``hang`` (never answer), and every
other ``key=value`` becomes a field of the JSON body. ``/version?version=1.4.2`` → ``{"version": "1.4.2"}``.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bot.config import OpsConfig, parse_config
from bot.console.loopback import LoopbackServer

DEMO_ORIGINS = ("http://opsbot-demo.invalid", "https://opsbot-demo.invalid")


class DemoServer(LoopbackServer):
    request_queue_size = 64  # the default 5 would drop connections when every check starts at once


class DemoServices:
    """The loopback server; ``stop()`` wakes anything it keeps hanging."""

    def __init__(self) -> None:
        stopping = self.stopping = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = dict(parse_qsl(urlsplit(self.path).query))
                if query.pop("hang", None):
                    stopping.wait(120)
                    return
                stopping.wait(int(query.pop("delay_ms", "0") or 0) / 1000)
                code = int(query.pop("code", "200") or 200)
                body = json.dumps(query).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_HEAD = do_POST = do_GET

            def log_message(self, *args: Any) -> None:
                pass

        self.server = DemoServer(("127.0.0.1", 0), Handler)
        self.server.start("console-demo-services")

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.stopping.set()
        self.server.stop()


def uses_demo(config: OpsConfig) -> bool:
    return any(origin in json.dumps(config.model_dump(mode="json")) for origin in DEMO_ORIGINS)


def with_demo_services(config: OpsConfig) -> tuple[OpsConfig, DemoServices | None]:
    """``config`` with its demo URLs pointed at a freshly started demo server (None when it has none)."""
    if not uses_demo(config):
        return config, None
    demo = DemoServices()
    text = json.dumps(config.model_dump(mode="json"))
    for origin in DEMO_ORIGINS:
        text = text.replace(origin, demo.origin)
    return parse_config(json.loads(text), "console"), demo
