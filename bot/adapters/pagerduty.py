"""PagerDuty: Events API v2 for pages (delivered by the outbox) and the REST API's ``oncalls`` for `/ops oncall`.

Events API v2 (https://developer.pagerduty.com/docs/send-alert-event): ``POST /v2/enqueue`` with ``routing_key``,
``event_action`` (trigger | acknowledge | resolve), ``dedup_key`` and, for a trigger, ``payload.summary`` (≤ 1024
characters), ``payload.source`` and ``payload.severity`` (critical | error | warning | info); 202 when accepted,
400 for an invalid event, 429 when rate limited, 5xx when PagerDuty is in trouble. A trigger with a ``dedup_key``
already open adds to that alert instead of opening another: a retried trigger never doubles a page.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from bot.adapters.outbox_delivery import Permanent, Retry
from bot.config.paging import PagerDuty
from bot.domain.incidents.ports import OnCallShift
from bot.domain.shared.errors import OpsError, Refused

SUMMARY_MAX = 1024  # Events API v2: payload.summary


class PagerDutyEvents:
    """Sends one Events API v2 event; raises the outbox's ``Retry`` (429 with its Retry-After, 5xx, unreachable) or
    ``Permanent`` (400: the event is invalid; no routing key configured)."""

    def __init__(self, config: PagerDuty, environ: Mapping[str, str] | None = None, client: httpx.Client | None = None) -> None:
        self._config = config
        self._environ = os.environ if environ is None else environ
        self._client = client or httpx.Client(timeout=config.timeout_seconds)

    def send(self, event: dict[str, Any]) -> None:
        key = self._environ.get(self._config.routing_key_env, "")
        if not key:
            raise Permanent(f"no PagerDuty routing key: set the environment variable {self._config.routing_key_env}")
        body = {**event, "routing_key": key}
        if "payload" in body:
            body["payload"] = {**body["payload"], "summary": str(body["payload"].get("summary", ""))[:SUMMARY_MAX]}
        try:
            response = self._client.post(self._config.events_url, json=body)
        except httpx.HTTPError as exc:
            raise Retry(f"PagerDuty could not be reached ({type(exc).__name__})") from None
        if response.status_code == 429:
            after = response.headers.get("Retry-After")
            raise Retry(f"PagerDuty is rate limiting (429, Retry-After {after or '?'} s)", float(after) if after else None)
        if response.status_code >= 500:
            raise Retry(f"PagerDuty answered {response.status_code}")
        if response.status_code >= 400:
            raise Permanent(f"PagerDuty refused the event ({response.status_code}): {_message(response)}")


class PagerDutyOnCall:
    """Who is on call now, from the REST API's ``GET /oncalls`` (``Authorization: Token token=…``)."""

    def __init__(self, config: PagerDuty, environ: Mapping[str, str] | None = None, client: httpx.Client | None = None) -> None:
        self._config = config
        self._environ = os.environ if environ is None else environ
        self._client = client or httpx.Client(timeout=config.timeout_seconds)

    def now(self, policy_ids: list[str]) -> list[OnCallShift]:
        """The shifts on call now for ``policy_ids`` (all when empty), lowest escalation level first. Raises OpsError
        (unreachable, 429, 5xx: a read, so no "nothing was changed") or Refused (no token, 401, 403)."""
        token = self._environ.get(self._config.token_env, "")
        if not token:
            raise Refused(f"PagerDuty's API token is not set: set the environment variable {self._config.token_env}.")
        params: list[tuple[str, str]] = [("earliest", "true"), ("limit", "100")]
        params += [("escalation_policy_ids[]", policy) for policy in policy_ids]
        shifts: list[OnCallShift] = []
        offset = 0
        while True:
            try:
                response = self._client.get(
                    self._config.api_url.rstrip("/") + "/oncalls",
                    params=[*params, ("offset", str(offset))],
                    headers={"Authorization": f"Token token={token}", "Accept": "application/vnd.pagerduty+json;version=2"},
                )
            except httpx.HTTPError as exc:
                raise OpsError(f"PagerDuty could not be reached ({type(exc).__name__}); try again in a minute.") from None
            if response.status_code in (401, 403):
                raise Refused(f"PagerDuty refused the API token ({response.status_code}); check {self._config.token_env}.")
            if response.status_code == 429 or response.status_code >= 500:
                raise OpsError(f"PagerDuty answered {response.status_code}; try again in a minute.")
            if response.status_code >= 400:
                raise OpsError(f"PagerDuty answered {response.status_code}: {_message(response)}")
            data = response.json()
            for item in data.get("oncalls") or []:
                shifts.append(
                    OnCallShift(
                        name=str((item.get("user") or {}).get("summary") or "someone"),
                        email=str((item.get("user") or {}).get("email") or ""),
                        level=int(item.get("escalation_level") or 1),
                        policy=str((item.get("escalation_policy") or {}).get("summary") or ""),
                        until=_time(item.get("end")),
                    )
                )
            if not data.get("more"):
                break
            offset += int(data.get("limit") or 100)
        return sorted(shifts, key=lambda s: (s.policy, s.level, s.name))


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    errors = body.get("errors") or (body.get("error") or {}).get("errors") or []
    return "; ".join(map(str, errors))[:200] or str(body.get("message") or (body.get("error") or {}).get("message") or "")[:200]
