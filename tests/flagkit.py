"""Flag test kit: an application database with the runbook's flag table, a real Unleash server, and helpers.

Its fixtures are registered for every test by ``pytest_plugins`` in tests/conftest.py. The application
database is separate from opsbot's: a fresh SQLite file or a fresh, empty PostgreSQL database per
test, with the flag table created the way the team's application would create it.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import _admin, _with_database
from tests.servers import SharedServers, start_unleash

UNLEASH_PORT = os.environ.get("UNLEASH_PORT", "4247")
CREATED_IN_UNLEASH: set[str] = set()  # archived at the end of the session, so the test server stays small
FLAG_TABLE_DDL = """
CREATE TABLE feature_flags (
    name VARCHAR(200) PRIMARY KEY,
    enabled BOOLEAN NOT NULL DEFAULT FALSE,
    kill_switch BOOLEAN NOT NULL DEFAULT FALSE,
    rollout_percentage INTEGER DEFAULT 100
)
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def app_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty application database (not opsbot's), on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'app.db'}"
        return
    admin = request.getfixturevalue("pg_admin_url")
    name = f"opsbot_app_{secrets.token_hex(5)}"
    _admin(admin, f'CREATE DATABASE "{name}"')
    yield _with_database(admin, name)
    _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_flag_table(
    url: str, rows: dict[str, tuple[bool, bool, int | None]], ddl: str = FLAG_TABLE_DDL, table: str = "feature_flags"
) -> None:
    """Create the flag table as the application would, with ``rows``: name → (enabled, kill_switch, rollout)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(ddl))
        for name, (enabled, killed, rollout) in rows.items():
            conn.execute(
                sa.text(f"INSERT INTO {table} VALUES (:n, :e, :k, :r)"), {"n": name, "e": enabled, "k": killed, "r": rollout}
            )
    engine.dispose()


def flag_row(url: str, name: str, table: str = "feature_flags") -> tuple[Any, ...] | None:
    """The row exactly as the application would read it."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(f"SELECT enabled, kill_switch, rollout_percentage FROM {table} WHERE name = :n"), {"n": name}
        ).first()
    engine.dispose()
    return None if row is None else (bool(row[0]), bool(row[1]), row[2])


def _unleash_up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="session")
def unleash_url(request: pytest.FixtureRequest, servers: SharedServers) -> Iterator[str]:
    """A real Unleash server: the one at $UNLEASH_URL (default 127.0.0.1:$UNLEASH_PORT, 4247), or, when none answers
    there, one scripts/unleash-server.sh starts for this run on the tests' PostgreSQL (stopped when the run ends)."""
    configured = os.environ.get("UNLEASH_URL") or f"http://127.0.0.1:{UNLEASH_PORT}"
    url = servers.url(
        "unleash",
        configured,
        answers=lambda: _unleash_up(configured),
        start=lambda: start_unleash(configured, request.getfixturevalue("pg_admin_url")),
    )
    yield url
    _archive_created(url)


def _archive_created(url: str) -> None:
    admin = UnleashAdmin(url)
    for name in sorted(CREATED_IN_UNLEASH):
        admin.http.delete(f"{admin.base}/{name}")  # archive: clients stop seeing it; best effort
    CREATED_IN_UNLEASH.clear()


class UnleashAdmin:
    """Test-side Admin API calls: make flags the way a team would in Unleash's UI, and client tokens."""

    def __init__(self, url: str, project: str = "default") -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=10)
        self.base = f"/api/admin/projects/{project}/features"

    def create(
        self, prefix: str = "t", *, production: bool = False, development: bool = False, rollout: int | None = None
    ) -> str:
        """A new flag with a unique name; on in the given environments, with a flexibleRollout when ``rollout`` is set."""
        name = f"{prefix}-{secrets.token_hex(4)}.checkout"
        self.http.post(self.base, json={"name": name, "type": "release"}).raise_for_status()
        CREATED_IN_UNLEASH.add(name)
        for env, on in (("production", production), ("development", development)):
            if rollout is not None:
                self.http.post(
                    f"{self.base}/{name}/environments/{env}/strategies",
                    json={
                        "name": "flexibleRollout",
                        "constraints": [],
                        "parameters": {"rollout": str(rollout), "stickiness": "default", "groupId": name},
                    },
                ).raise_for_status()
            if on:
                self.http.post(f"{self.base}/{name}/environments/{env}/on").raise_for_status()
        return name

    def environment(self, name: str, env: str) -> dict[str, Any]:
        response = self.http.get(f"{self.base}/{name}/environments/{env}")
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    def switch(self, name: str, env: str, on: bool) -> None:
        self.http.post(f"{self.base}/{name}/environments/{env}/{'on' if on else 'off'}").raise_for_status()

    def client_token(self, environment: str) -> str:
        body = {
            "type": "client",
            "environment": environment,
            "projects": ["*"],
            "tokenName": f"opsbot-test-{secrets.token_hex(3)}",
        }
        response = self.http.post("/api/admin/api-tokens", json=body)
        response.raise_for_status()
        return str(response.json()["secret"])


class AppSees:
    """What an application sees, through Unleash's official Python client (a fresh fetch each call)."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token

    def enabled_share(self, name: str, users: int = 1) -> float:
        """Fraction of ``users`` distinct user IDs for whom the flag is on."""
        from UnleashClient import UnleashClient
        from UnleashClient.cache import FileCache

        client = UnleashClient(
            url=f"{self.url}/api",
            app_name=f"opsbot-flag-test-{secrets.token_hex(4)}",
            custom_headers={"Authorization": self.token},
            disable_metrics=True,
            disable_registration=True,
            refresh_interval=3600,
            cache=FileCache("opsbot-flag-test", directory=tempfile.mkdtemp(prefix="unleash-cache-")),
        )
        client.initialize_client(fetch_toggles=True)
        try:
            return sum(client.is_enabled(name, {"userId": f"user-{i}"}) for i in range(users)) / users
        finally:
            client.destroy()


class FaultProxy:
    """Forwards to Unleash; ``fail(method, path_part, status=…, delay=…, after=…)`` breaks matching requests."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.faults: list[dict[str, object]] = []
        self.lock = threading.Lock()
        self.seen: list[tuple[str, str]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.seen.append((self.command, self.path))
                fault = proxy.match(self.command, self.path)
                if fault and fault.get("delay"):
                    time.sleep(float(fault["delay"]))  # type: ignore[arg-type]
                if fault and fault.get("status"):
                    self._send(int(fault["status"]), b'{"message": "injected failure"}')  # type: ignore[arg-type]
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization")}
                upstream = httpx.request(self.command, proxy.target + self.path, content=body, headers=headers, timeout=10)
                if fault and fault.get("after"):
                    time.sleep(float(fault["after"]))  # type: ignore[arg-type]
                self._send(upstream.status_code, upstream.content)

            def _send(self, status: int, body: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting, as it should

            do_GET = do_POST = do_PUT = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def fail(self, method: str, path: str, *, skip: int = 0, **how: object) -> None:
        """Break matching requests (after letting the first ``skip`` of them through)."""
        self.faults.append({"method": method, "path": path, "skip": skip, **how})

    def match(self, method: str, path: str) -> dict[str, object] | None:
        with self.lock:
            for fault in self.faults:
                if fault["method"] == method and str(fault["path"]) in path:
                    if int(fault["skip"]) > 0:  # type: ignore[call-overload]
                        fault["skip"] = int(fault["skip"]) - 1  # type: ignore[call-overload]
                        return None
                    return fault
        return None

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
