"""The public status page as HTML (Jinja2, autoescaped) and JSON, with the headers a public page should carry.

The page works without JavaScript; one inline script (allowed by its hash in the Content-Security-Policy, nothing
else may run) adds the viewer's local time beside each UTC time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from bot.domain.status.model import StatusSnapshot
from bot.domain.status.service import StatusBoard
from bot.render import shipped_templates

log = logging.getLogger("opsbot.status")
STATUS_PATHS = frozenset({"/status", "/status.json"})
MAX_AGE_SECONDS = 5  # a public page gets a crowd during an incident: one read of Redis and the database per 5 s
PAGE = "status/page.html.j2"
SCRIPT = "status/local_time.js.j2"
Headers = list[tuple[str, str]]


def _utc(moment: datetime) -> str:
    """``2026-11-23 14:00 UTC``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _iso(moment: datetime) -> str:
    """``2026-11-23T14:00:00Z``: what ``<time datetime>`` and the script read."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class StatusPageRenderer:
    """Renders a ``StatusSnapshot``; templates come from ``override_dir`` first (OPSBOT_TEMPLATES), then the shipped ones."""

    def __init__(self, override_dir: Path | None = None) -> None:
        loaders = [FileSystemLoader(str(override_dir))] if override_dir else []
        loaders.append(FileSystemLoader(str(shipped_templates())))
        self.env = Environment(
            loader=ChoiceLoader(loaders),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(utc=_utc, iso=_iso)
        script = self.env.get_template(SCRIPT).render()
        if "</" in script:
            raise ValueError(f"{SCRIPT} must not contain '</' (it is inlined in a <script> element)")
        self._script = Markup(script)  # our own file, not user text
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        self._csp = (
            f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )

    def html(self, snapshot: StatusSnapshot) -> tuple[bytes, Headers]:
        body = self.env.get_template(PAGE).render(page=snapshot, script=self._script).encode()
        return body, [("Content-Type", "text/html; charset=utf-8"), ("Content-Security-Policy", self._csp), *_common(body)]

    def json(self, snapshot: StatusSnapshot) -> tuple[bytes, Headers]:
        body = json.dumps(snapshot.to_dict()).encode()
        return body, [("Content-Type", "application/json"), ("Access-Control-Allow-Origin", "*"), *_common(body)]


def _common(body: bytes) -> Headers:
    return [
        ("Content-Length", str(len(body))),
        ("Cache-Control", f"public, max-age={MAX_AGE_SECONDS}"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
    ]


class StatusPageApp:
    """``GET /status`` (HTML) and ``GET /status.json`` as a WSGI app; 404 while ``status_page.enabled`` is false.

    It answers 200 even when Redis or the database are down: the page then says what it could not read. One
    snapshot serves every request for ``max_age`` seconds (per process; the reads happen once however many ask).
    """

    def __init__(self, board: StatusBoard, renderer: StatusPageRenderer, max_age: float = MAX_AGE_SECONDS) -> None:
        self._board = board
        self._renderer = renderer
        self._max_age = max_age
        self._lock = threading.Lock()
        self._cached: tuple[float, StatusSnapshot] | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not self._board.enabled:
            body = b"Not Found"
            start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return [body]
        snapshot = self._snapshot()
        as_json = environ.get("PATH_INFO", "").endswith(".json")
        body, headers = self._renderer.json(snapshot) if as_json else self._renderer.html(snapshot)
        start_response("200 OK", headers)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    def _snapshot(self) -> StatusSnapshot:
        with self._lock:  # one request reads the stores; the others wait for its snapshot
            now = time.monotonic()
            if self._cached is not None and now - self._cached[0] < self._max_age:
                return self._cached[1]
            try:
                snapshot = self._board.snapshot()
            except Exception:  # a public page never answers 500; what broke goes to the log with its traceback
                log.exception("status page: could not assemble the page")
                snapshot = self._board.unreadable()
            self._cached = (now, snapshot)
            return snapshot
