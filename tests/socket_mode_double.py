"""A Socket Mode server on loopback that speaks to a client as Slack does.

What it models (https://api.slack.com/apis/socket-mode, "Using Socket Mode"; envelopes as in
../shared/slack/socket_mode_envelopes.json):

- ``apps.connections.open`` (answered by the Slack emulator with ``url``) hands out a websocket URL; a client that
  connects gets ``{"type": "hello", …}`` first.
- Envelopes (``slash_commands``, ``interactive``, ``events_api``) carry an ``envelope_id`` the client must ack with
  ``{"envelope_id": …}`` (optionally with a ``payload``) within 3 seconds.
- ``events_api`` envelopes that are not acked in time, or whose connection drops before the ack, are delivered
  again on the next connection with ``retry_attempt`` + 1 and ``retry_reason`` (``timeout``), the same event and
  ``event_id``, a new ``envelope_id`` — up to three retries, like Slack's Events API. Slash commands and
  interactions are not redelivered (Slack shows the user a timeout instead).
- ``disconnect(reason)`` sends ``{"type": "disconnect", "reason": …}`` (``refresh_requested``, ``warning``,
  ``link_disabled``) and closes that connection a moment later; ``drop()`` cuts the TCP connection with no message.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

ACK_WITHIN_SECONDS = 3.0  # Slack's deadline for an envelope's ack
MAX_RETRIES = 3  # Events API: three retries after the first delivery


@dataclass
class Delivery:
    """One envelope sent: on which connection, when, and the acks it got."""

    envelope: dict[str, Any]
    connection: int
    sent_at: float
    acks: list[dict[str, Any]] = field(default_factory=list)
    acked_at: float | None = None


class SocketModeDouble:
    """Start with ``start()``; point the Slack emulator's ``socket_mode_url`` at ``url``."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._connections: dict[int, ServerConnection] = {}
        self._current: int | None = None
        self._ids = 0
        self.deliveries: dict[str, Delivery] = {}  # by envelope_id
        self.connected_at: list[float] = []  # one entry per websocket connection (after its hello)
        self.unknown: list[str] = []  # frames from the client that were not an ack
        self._pending_events: list[dict[str, Any]] = []  # events_api envelopes waiting for a connection
        self._server: Server | None = None
        self._stop = threading.Event()

    # ----- lifecycle -----
    def start(self) -> SocketModeDouble:
        self._server = serve(self._serve, "127.0.0.1", 0, ping_interval=None)
        threading.Thread(target=self._server.serve_forever, daemon=True, name="socket-mode-double").start()
        threading.Thread(target=self._redeliver_loop, daemon=True, name="socket-mode-redelivery").start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.socket.getsockname()[:2]
        return f"ws://{host}:{port}/link/?ticket={secrets.token_hex(8)}"

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()

    # ----- the connection -----
    def _serve(self, connection: ServerConnection) -> None:
        with self._lock:
            self._ids += 1
            number = self._ids
            self._connections[number] = connection
            self._current = number
        connection.send(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": len(self._connections),
                    "debug_info": {"host": "applink-double", "approximate_connection_time": 18060},
                    "connection_info": {"app_id": "A0OPSBOT"},
                }
            )
        )
        with self._lock:
            self.connected_at.append(time.monotonic())
            self._lock.notify_all()
        self._flush_pending()
        try:
            for frame in connection:
                self._received(frame if isinstance(frame, str) else frame.decode())
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                self._connections.pop(number, None)
                if self._current == number:
                    self._current = None
                self._lock.notify_all()

    def _received(self, frame: str) -> None:
        try:
            message = json.loads(frame)
        except ValueError:
            message = {}
        with self._lock:
            delivery = self.deliveries.get(str(message.get("envelope_id") or ""))
            if delivery is None:
                self.unknown.append(frame)
            else:
                delivery.acks.append(message)
                delivery.acked_at = delivery.acked_at or time.monotonic()
            self._lock.notify_all()

    # ----- what a test does -----
    def wait_connected(self, count: int = 1, timeout: float = 30.0) -> None:
        """Until ``count`` connections have been opened in all (and one is open now)."""
        self._wait(lambda: len(self.connected_at) >= count and self._current is not None, timeout, f"{count} connection(s)")

    def send(self, kind: str, payload: dict[str, Any], *, retry_attempt: int = 0, retry_reason: str = "") -> str:
        """Send an envelope of ``kind`` on the open connection; its ``envelope_id``."""
        envelope: dict[str, Any] = {
            "envelope_id": secrets.token_hex(16),
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
        }
        if kind == "events_api":
            envelope.update(retry_attempt=retry_attempt, retry_reason=retry_reason)
        with self._lock:
            current = self._current
            connection = self._connections.get(current) if current is not None else None
            if connection is None:
                raise AssertionError("no Socket Mode connection is open")
            self.deliveries[envelope["envelope_id"]] = Delivery(envelope, current, time.monotonic())  # type: ignore[arg-type]
        connection.send(json.dumps(envelope))
        return str(envelope["envelope_id"])

    def wait_ack(self, envelope_id: str, timeout: float = 10.0) -> Delivery:
        self._wait(lambda: self.deliveries[envelope_id].acks, timeout, f"the ack of {envelope_id}")
        return self.deliveries[envelope_id]

    def disconnect(self, reason: str = "refresh_requested", close_after: float = 1.0) -> None:
        """Ask the client to reconnect, as Slack does before it closes a connection; close it ``close_after`` later."""
        with self._lock:
            number = self._current
            connection = self._connections.get(number) if number is not None else None
        assert connection is not None, "no Socket Mode connection is open"
        connection.send(json.dumps({"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-double"}}))
        threading.Timer(close_after, connection.close).start()

    def drop(self) -> None:
        """Cut the open connection without a word (a network fault)."""
        with self._lock:
            number = self._current
            connection = self._connections.get(number) if number is not None else None
        assert connection is not None, "no Socket Mode connection is open"
        with contextlib.suppress(OSError):
            connection.socket.shutdown(socket.SHUT_RDWR)
        connection.socket.close()

    def event_deliveries(self, event_id: str) -> list[Delivery]:
        """Every delivery of the event ``event_id``, first one first."""
        with self._lock:
            return sorted(
                (
                    d
                    for d in self.deliveries.values()
                    if d.envelope["type"] == "events_api" and d.envelope["payload"].get("event_id") == event_id
                ),
                key=lambda d: d.sent_at,
            )

    # ----- redelivery -----
    def _redeliver_loop(self) -> None:
        while not self._stop.wait(0.2):
            now = time.monotonic()
            with self._lock:
                open_now = set(self._connections)
                due = [
                    d
                    for d in self.deliveries.values()
                    if d.envelope["type"] == "events_api"
                    and not d.acks
                    and not d.envelope.get("_redelivered")
                    and (now - d.sent_at > ACK_WITHIN_SECONDS or d.connection not in open_now)
                    and d.envelope.get("retry_attempt", 0) < MAX_RETRIES
                ]
                for d in due:
                    d.envelope["_redelivered"] = True
                    self._pending_events.append(d.envelope)
            self._flush_pending()

    def _flush_pending(self) -> None:
        with self._lock:
            if self._current is None or not self._pending_events:
                return
            pending, self._pending_events = self._pending_events, []
        for envelope in pending:
            try:
                self.send(
                    "events_api", envelope["payload"], retry_attempt=envelope.get("retry_attempt", 0) + 1, retry_reason="timeout"
                )
            except (AssertionError, ConnectionClosed):
                with self._lock:
                    self._pending_events.append(envelope)

    def _wait(self, predicate: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"waited {timeout}s for {what}")
                self._lock.wait(min(remaining, 0.1))
