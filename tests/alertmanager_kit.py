"""A real Alertmanager (Debian's ``prometheus-alertmanager``) routed to opsbot's real receiver, for tests.

``receiver(bot, token)`` serves opsbot's WSGI app (``bot.web.make_wsgi_app``, the one `opsbot serve` runs) on a
free loopback port; ``alertmanager(servers, receiver_url, token, port)`` starts Alertmanager with a temporary
``--storage.path``, clustering off, and one route to that receiver with the bearer token, short group timings and
``send_resolved``. Tests push alerts with Alertmanager's own API (``POST /api/v2/alerts``) and read its silences.
When the binary is missing the run stops with one line: ``apt install prometheus-alertmanager``.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import yaml
from pydantic import SecretStr

from bot.web import make_wsgi_app
from tests.servers import SharedServers
from tests.support import Bot

BINARY = "prometheus-alertmanager"
INSTALL = f"apt install {BINARY}"
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        return None


@contextlib.contextmanager
def receiver(bot: Bot, token: str | None) -> Iterator[str]:
    """opsbot's WSGI app for ``bot`` (with ``OPSBOT_ALERTMANAGER_TOKEN`` = ``token``) on loopback; its base URL."""
    settings = bot.settings.model_copy(update={"opsbot_alertmanager_token": SecretStr(token) if token is not None else None})
    server = make_server(
        "127.0.0.1", 0, make_wsgi_app(settings, bot.services), server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, name="opsbot-receiver", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def alert(alertname: str, *, resolved: bool = False, **labels: str) -> dict[str, Any]:
    """An alert as Prometheus pushes it to Alertmanager (``POST /api/v2/alerts``); resolved: ``endsAt`` in the past."""
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "labels": {"alertname": alertname, **labels},
        "annotations": {"summary": f"{alertname} on {labels.get('service', 'everything')}", "description": "5xx above 5 %"},
        "startsAt": (now - timedelta(minutes=5)).isoformat(),
        "generatorURL": "http://prometheus.example/graph",
    }
    body["endsAt"] = (now - timedelta(seconds=1)).isoformat() if resolved else (now + timedelta(hours=1)).isoformat()
    return body


@dataclass
class Alertmanager:
    url: str
    log: Path

    def push(self, *alerts: dict[str, Any]) -> None:
        response = httpx.post(f"{self.url}/api/v2/alerts", json=list(alerts), timeout=10)
        assert response.status_code == 200, response.text

    def silences(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v2/silences", timeout=10)
        assert response.status_code == 200, response.text
        return list(response.json())

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def config_for(receiver_url: str, token: str) -> dict[str, Any]:
    """One route to opsbot: groups by alertname and service, sends within a second, repeats every 2 s, resolves too."""
    return {
        "route": {
            "receiver": "opsbot",
            "group_by": ["alertname", "service"],
            "group_wait": "500ms",
            "group_interval": "1s",
            "repeat_interval": "2s",
        },
        "receivers": [
            {
                "name": "opsbot",
                "webhook_configs": [
                    {
                        "url": f"{receiver_url}/alertmanager",
                        "send_resolved": True,
                        "http_config": {"authorization": {"type": "Bearer", "credentials": token}},
                    }
                ],
            }
        ],
    }


@contextlib.contextmanager
def alertmanager(servers: SharedServers, receiver_url: str, token: str, port: int | None = None) -> Iterator[Alertmanager]:
    """A fresh Alertmanager on ``127.0.0.1:port`` routed to ``receiver_url``; stopped and its data removed afterwards."""
    exe = shutil.which(BINARY) or (f"/usr/bin/{BINARY}" if Path(f"/usr/bin/{BINARY}").exists() else None)
    if exe is None:
        servers.fatal(INSTALL)
    workdir = Path(tempfile.mkdtemp(prefix="opsbot-test-alertmanager-"))
    (workdir / "alertmanager.yml").write_text(yaml.safe_dump(config_for(receiver_url, token)), encoding="utf-8")
    port = port or free_port()
    log = workdir / "alertmanager.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                exe,
                f"--config.file={workdir / 'alertmanager.yml'}",
                f"--storage.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
                "--log.level=debug",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Alertmanager(f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{server.url}/-/ready", timeout=1).status_code == 200:
                    break
            assert process.poll() is None and time.monotonic() < deadline, f"Alertmanager did not start:\n{server.logs()}"
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(workdir, ignore_errors=True)
