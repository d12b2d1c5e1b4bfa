"""A PagerDuty double on loopback: the Events API v2 (``POST /v2/enqueue``) and the REST API's ``GET /oncalls``.

Events are validated as PagerDuty documents them (https://developer.pagerduty.com/docs/send-alert-event):
``routing_key`` must be the integration's, ``event_action`` one of trigger / acknowledge / resolve, ``dedup_key``
at most 255 characters (required to acknowledge or resolve), and a trigger needs ``payload.summary`` (≤ 1024
characters), ``payload.source`` and ``payload.severity`` (critical / error / warning / info). A valid event gets 202
``{"status": "success", "message": "Event processed", "dedup_key": …}``; an invalid one 400 ``{"status": "invalid
event", "errors": […]}``. Alerts are kept by ``dedup_key``: a trigger for an open one adds to it (deduplicated), not a
second alert. ``fail(status, times)`` answers the next events with 429 or 5xx instead (nothing recorded).
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

SEVERITIES = {"critical", "error", "warning", "info"}
ACTIONS = {"trigger", "acknowledge", "resolve"}


@dataclass
class Alert:
    dedup_key: str
    status: str  # triggered | acknowledged | resolved
    summary: str
    severity: str
    events: list[str] = field(default_factory=list)  # every accepted event_action, in order


class PagerDutyDouble:
    def __init__(self) -> None:
        self.routing_key = secrets.token_hex(16)  # 32 characters, like an integration key
        self.token = "pd-rest-" + secrets.token_hex(8)
        self.alerts: dict[str, Alert] = {}
        self.accepted: list[dict[str, Any]] = []
        self.refused: list[tuple[int, dict[str, Any]]] = []  # (status, body) of answers other than 202
        self.oncalls: list[dict[str, Any]] = []
        self._failures: list[tuple[int, str | None]] = []
        self._lock = threading.Condition()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> PagerDutyDouble:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers, body = double._enqueue(urlsplit(self.path).path, raw)
                self._answer(status, headers, body)

            def do_GET(self) -> None:
                status, headers, body = double._oncalls(self.path, self.headers.get("Authorization", ""))
                self._answer(status, headers, body)

            def _answer(self, status: int, headers: dict[str, str], body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True, name="pagerduty-double").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def fail(self, status: int, times: int = 1, retry_after: str | None = None) -> None:
        """Answer the next ``times`` events with ``status`` (429, 500, 503 …), recording nothing."""
        with self._lock:
            self._failures.extend([(status, retry_after)] * times)

    # ----- Events API v2 -----
    def _enqueue(self, path: str, raw: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._lock:
            if path != "/v2/enqueue":
                return 404, {}, {"status": "not found"}
            if self._failures:
                status, retry_after = self._failures.pop(0)
                body = {"status": "throttle event", "message": "Requests for this service are arriving too quickly."}
                self.refused.append((status, body))
                self._lock.notify_all()
                return status, ({"Retry-After": retry_after} if retry_after else {}), body
            try:
                event = json.loads(raw)
            except ValueError:
                return self._invalid(["Event object is not valid JSON"])
            errors = self._errors(event)
            if errors:
                return self._invalid(errors)
            key = event.get("dedup_key") or secrets.token_hex(16)
            action = event["event_action"]
            alert = self.alerts.get(key)
            if action == "trigger":
                if alert is None or alert.status == "resolved":
                    payload = event["payload"]
                    alert = self.alerts[key] = Alert(key, "triggered", payload["summary"], payload["severity"])
            elif alert is not None and alert.status != "resolved":
                alert.status = "acknowledged" if action == "acknowledge" else "resolved"
            if alert is not None:
                alert.events.append(action)
            self.accepted.append(event)
            self._lock.notify_all()
            return 202, {}, {"status": "success", "message": "Event processed", "dedup_key": key}

    def _errors(self, event: Any) -> list[str]:
        if not isinstance(event, dict):
            return ["Event object is invalid"]
        errors = []
        if event.get("routing_key") != self.routing_key:
            errors.append("'routing_key' is invalid")
        if event.get("event_action") not in ACTIONS:
            errors.append("'event_action' is invalid (must be one of trigger, acknowledge, resolve)")
        key = event.get("dedup_key")
        if key is not None and (not isinstance(key, str) or len(key) > 255):
            errors.append("'dedup_key' must be a string of at most 255 characters")
        if event.get("event_action") in ("acknowledge", "resolve") and not key:
            errors.append("'dedup_key' is required to acknowledge or resolve")
        if event.get("event_action") == "trigger":
            payload = event.get("payload")
            if not isinstance(payload, dict):
                errors.append("'payload' is missing")
            else:
                summary = payload.get("summary")
                if not isinstance(summary, str) or not summary or len(summary) > 1024:
                    errors.append("'payload.summary' is missing or longer than 1024 characters")
                if not payload.get("source"):
                    errors.append("'payload.source' is missing")
                if payload.get("severity") not in SEVERITIES:
                    errors.append("'payload.severity' must be one of critical, error, warning, info")
        return errors

    def _invalid(self, errors: list[str]) -> tuple[int, dict[str, str], dict[str, Any]]:
        body = {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
        self.refused.append((400, body))
        self._lock.notify_all()
        return 400, {}, body

    # ----- REST API -----
    def _oncalls(self, path: str, authorization: str) -> tuple[int, dict[str, str], dict[str, Any]]:
        parts = urlsplit(path)
        if parts.path != "/oncalls":
            return 404, {}, {"error": {"message": "Not Found", "code": 2100}}
        if authorization != f"Token token={self.token}":
            return 401, {}, {"error": {"message": "Unauthorized", "code": 2006}}
        query = parse_qs(parts.query)
        policies = set(query.get("escalation_policy_ids[]", []))
        found = [o for o in self.oncalls if not policies or o["escalation_policy"]["id"] in policies]
        limit, offset = int(query.get("limit", ["25"])[0]), int(query.get("offset", ["0"])[0])
        page = found[offset : offset + limit]
        return 200, {}, {"oncalls": page, "limit": limit, "offset": offset, "more": offset + limit < len(found), "total": None}

    def add_oncall(self, name: str, email: str, policy_id: str, policy_name: str, level: int = 1, end: str | None = None) -> None:
        self.oncalls.append(
            {
                "user": {"id": "P" + secrets.token_hex(3).upper(), "summary": name, "email": email, "type": "user_reference"},
                "escalation_policy": {"id": policy_id, "summary": policy_name, "type": "escalation_policy_reference"},
                "escalation_level": level,
                "start": "2026-11-29T00:00:00Z",
                "end": end,
            }
        )

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> Any:
        import time

        deadline = time.monotonic() + timeout
        with self._lock:
            while not (result := predicate()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"PagerDuty double: condition not met in {timeout}s; accepted {self.accepted}")
                self._lock.wait(min(remaining, 0.1))
            return result
