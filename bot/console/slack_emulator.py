"""A local stand-in for Slack: the Web API and response URLs over real HTTP on loopback.

It answers like Slack (``{"ok": false, "error": …}`` with HTTP 200, 429 with Retry-After, block
limits enforced as ``invalid_blocks``), records every call, and keeps the messages it was sent so
the console can show them and tests can assert on them. The console runs the bot against it; the
tests point the Web API client at it.

Tests make calls fail: ``fail()`` answers an error (a 429, a 500 …), before the method does its work
or, with ``after=True``, after it (Slack posted the message, the caller saw an error);
``fail_connection()`` closes the connection with no response at all.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl

from bot.console.loopback import LoopbackServer
from bot.console.slack_files import FileMethods
from bot.console.slack_model import ApiCall, Channel, Failure, Posted, ResponseTarget

__all__ = ["ApiCall", "Channel", "ConnectionDropped", "Posted", "SlackEmulator"]
RESPONSE_URL_MAX_USES = 5


class ConnectionDropped(Exception):
    """``handle()`` raises it for a call that gets no response: the HTTP server closes the connection."""


class SlackEmulator(FileMethods):
    """Start with ``start()``; ``api_url`` is the Web API base, ``response_url()`` mints response URLs."""

    def __init__(self, token: str = "xoxb-local-emulator", team_id: str = "T0LOCAL", bot_user: str = "U0OPSBOT") -> None:
        self.token = token
        self.app_token = "xapp-1-local-emulator"  # Socket Mode's app-level token (apps.connections.open)
        self.socket_mode_url: str | None = None  # what apps.connections.open answers (a test's Socket Mode server)
        self.team_id = team_id
        self.bot_user = bot_user
        self.channels: dict[str, Channel] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.messages: list[Posted] = []
        self.views: list[dict[str, Any]] = []
        self.homes: dict[str, dict[str, Any]] = {}  # each person's Home tab, as last published (views.publish)
        self.home_tab_enabled = True
        self.calls: list[ApiCall] = []
        self._responses: dict[str, ResponseTarget] = {}
        self._failures: dict[str, list[Failure]] = {}
        self._counter = itertools.count(1)
        self._lock = threading.Condition()
        self._server: LoopbackServer | None = None
        self._clock = time.time()
        FileMethods.__init__(self)

    # ----- lifecycle -----
    def start(self, host: str = "127.0.0.1", port: int = 0) -> SlackEmulator:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else b""
                if self.path.startswith("/upload/"):  # files.getUploadURLExternal's URL: the file's bytes, not a form
                    status, text = emulator.receive_upload(self.path.rsplit("/", 1)[-1], data)
                    reply = text.encode("utf-8")
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                    return
                raw = data.decode("utf-8")
                try:
                    status, headers, body = emulator.handle(self.path, dict(self.headers.items()), raw)
                except ConnectionDropped:
                    self.close_connection = True  # nothing written: the client reads EOF where the status line should be
                    return
                data = body.encode("utf-8")
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = LoopbackServer((host, port), Handler)
        self._server.start("slack-emulator")
        return self

    def stop(self) -> None:
        if self._server:
            self._server.stop()
            self._server = None

    @property
    def base_url(self) -> str:
        assert self._server, "start() the emulator first"
        host, port = self._server.server_address[:2]
        return f"http://{host if isinstance(host, str) else host.decode()}:{port}"

    @property
    def api_url(self) -> str:
        return self.base_url + "/api/"

    def _upload_url(self, file_id: str) -> str:
        return f"{self.base_url}/upload/{file_id}"

    # ----- workspace set-up -----
    def add_channel(self, channel_id: str, name: str, members: list[str] | None = None) -> Channel:
        with self._lock:
            channel = Channel(channel_id, name, set(members or []) | {self.bot_user})
            self.channels[channel_id] = channel
            return channel

    def add_usergroup(self, group_id: str, users: list[str]) -> None:
        with self._lock:
            self.usergroups[group_id] = list(users)

    def add_user(self, user_id: str, name: str, **extra: Any) -> None:
        with self._lock:
            self.users[user_id] = {"id": user_id, "name": name, "real_name": extra.pop("real_name", name), "tz": "UTC", **extra}

    def response_url(self, channel: str, user: str, message_ts: str | None = None) -> str:
        """A fresh response URL bound to a channel, a user and (for clicks) the clicked message."""
        key = f"R{next(self._counter):06d}"
        with self._lock:
            self._responses[key] = ResponseTarget(channel, user, message_ts)
        return f"{self.base_url}/response/{key}"

    def user_says(self, channel: str, user: str, text: str, thread_ts: str | None = None) -> Posted:
        """A person writes in a channel (or in a thread), as the bot would later read it back from history."""
        with self._lock:
            posted = self._store(Posted(channel, self._ts(), text, [], via="user", thread_ts=thread_ts, user=user))
            self._lock.notify_all()
            return posted

    def trigger_id(self) -> str:
        return f"{next(self._counter)}.{int(time.time())}.local"

    def fail(
        self,
        method: str,
        error: str,
        *,
        times: int = 1,
        status: int = 200,
        retry_after: int | None = None,
        after: bool = False,
        needed: str | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail the way Slack fails them.

        The caller gets HTTP ``status`` (with ``Retry-After: retry_after`` seconds if given) and
        ``{"ok": false, "error": error}``. With ``after``, the method does its work first (a message is
        posted, updated …) and the caller gets the failure anyway: Slack did it, the answer was lost.
        Failures queued for one method, by ``fail`` or ``fail_connection``, are used in order. ``needed`` is the
        scope a ``missing_scope`` answer names, as Slack's does (with ``provided``).
        """
        with self._lock:
            self._failures.setdefault(method, []).extend(
                Failure(error, status, retry_after, after, needed=needed) for _ in range(times)
            )

    def fail_connection(self, method: str, times: int = 1, *, after: bool = False) -> None:
        """Close the connection with no response for the next ``times`` calls of ``method``.

        The caller reads EOF where the status line should be (``http.client.RemoteDisconnected`` in
        slack_sdk's client, a connection error elsewhere). With ``after``, the method does its work first.
        """
        with self._lock:
            self._failures.setdefault(method, []).extend(Failure("", 0, None, after, drop=True) for _ in range(times))

    # ----- reading what happened -----
    def calls_to(self, method: str) -> list[ApiCall]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def visible(self) -> list[Posted]:
        with self._lock:
            return [m for m in self.messages if not m.deleted]

    def in_channel(self, channel: str) -> list[Posted]:
        return [m for m in self.visible() if m.channel == channel and m.ephemeral_to is None]

    def ephemerals(self, user: str | None = None) -> list[Posted]:
        return [m for m in self.visible() if m.ephemeral_to and (user is None or m.ephemeral_to == user)]

    def responses(self, url: str) -> list[ApiCall]:
        """What the app sent to the response URL ``url``, in order."""
        key = url.rsplit("/", 1)[-1]
        with self._lock:
            return [c for c in self.calls if c.method == "response_url" and c.args.get("_key") == key]

    def find(self, ts: str) -> Posted | None:
        with self._lock:
            return next((m for m in self.messages if m.ts == ts), None)

    def wait_for(self, predicate: Any, timeout: float = 5.0) -> Any:
        """Block until ``predicate()`` returns something truthy (messages arrive after the ack)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                result = predicate()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"condition not met within {timeout}s; {len(self.messages)} messages, last calls: "
                        f"{[c.method for c in self.calls[-5:]]}"
                    )
                self._lock.wait(min(remaining, 0.05))

    # ----- HTTP -----
    def handle(self, path: str, headers: dict[str, str], raw: str) -> tuple[int, dict[str, str], str]:
        if path.startswith("/response/"):
            return self._handle_response_url(path.rsplit("/", 1)[-1], raw)
        if not path.startswith("/api/"):
            return 404, {"Content-Type": "text/plain"}, "not found"
        method = path[len("/api/") :].split("?")[0]
        args = self._parse_args(headers, raw)
        with self._lock:
            queued = self._failures.get(method)
            failure = queued.pop(0) if queued else None
            performed = failure is None or failure.after
            status, extra_headers, response = self._api(method, headers, args) if performed else (0, {}, {})
            if failure is not None and failure.drop:
                self.calls.append(ApiCall(method, args, time.time(), 0, {}, performed))
                self._lock.notify_all()
                raise ConnectionDropped(method)
            if failure is not None:
                extra_headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
                status, response = failure.status, {"ok": False, "error": failure.error}
                if failure.needed:
                    response.update(needed=failure.needed, provided="chat:write,commands")
            self.calls.append(ApiCall(method, args, time.time(), status, response, performed))
            self._lock.notify_all()
        return status, {"Content-Type": "application/json; charset=utf-8", **extra_headers}, json.dumps(response)

    @staticmethod
    def _parse_args(headers: dict[str, str], raw: str) -> dict[str, Any]:
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        args: dict[str, Any] = json.loads(raw) if "json" in content_type and raw else dict(parse_qsl(raw))
        for key in ("blocks", "view", "users"):
            value = args.get(key)
            if isinstance(value, str) and value[:1] in "[{":
                args[key] = json.loads(value)
        if isinstance(args.get("metadata"), str):  # form-encoded, as a JSON string; invalid JSON stays a string
            with contextlib.suppress(ValueError):
                args["metadata"] = json.loads(args["metadata"])
        return args

    def _api(self, method: str, headers: dict[str, str], args: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        if method == "apps.connections.open":  # the one method called with the app-level token
            if auth != f"Bearer {self.app_token}":
                return 200, {}, {"ok": False, "error": "not_authed" if not auth else "invalid_auth"}
            if self.socket_mode_url is None:
                return 200, {}, {"ok": False, "error": "not_allowed_token_type"}
            return 200, {}, {"ok": True, "url": self.socket_mode_url}
        if auth != f"Bearer {self.token}":
            return 200, {}, {"ok": False, "error": "not_authed" if not auth else "invalid_auth"}
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return 200, {}, {"ok": False, "error": "unknown_method"}
        return 200, {}, handler(args)

    # ----- response URLs -----
    def _handle_response_url(self, key: str, raw: str) -> tuple[int, dict[str, str], str]:
        with self._lock:
            target = self._responses.get(key)
            if target is None:
                return 404, {"Content-Type": "text/plain"}, "no_such_url"
            if target.uses >= RESPONSE_URL_MAX_USES:
                return 404, {"Content-Type": "text/plain"}, "used_url"
            target.uses += 1
            try:
                payload = json.loads(raw or "{}")
            except json.JSONDecodeError:
                return 400, {"Content-Type": "text/plain"}, "invalid_payload"
            self.calls.append(ApiCall("response_url", {**payload, "_key": key}, time.time(), 200, {"ok": True}))
            problem = self._content_errors(payload)
            if problem and not payload.get("delete_original"):
                self._lock.notify_all()
                return 400, {"Content-Type": "text/plain"}, problem["error"]
            original = self.find(target.message_ts) if target.message_ts else None
            if payload.get("delete_original") and original:
                original.deleted = True
            elif payload.get("replace_original") and original:
                original.text, original.blocks, original.edits = (
                    str(payload.get("text") or ""),
                    list(payload.get("blocks") or []),
                    original.edits + 1,
                )
            else:
                in_channel = payload.get("response_type") == "in_channel"
                self._store(
                    Posted(
                        target.channel,
                        self._ts(),
                        str(payload.get("text") or ""),
                        list(payload.get("blocks") or []),
                        ephemeral_to=None if in_channel else target.user,
                        via="response_url",
                        response_key=key,
                    )
                )
            self._lock.notify_all()
        return 200, {"Content-Type": "text/plain"}, "ok"
