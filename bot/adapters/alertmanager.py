"""Alertmanager's API v2 over httpx: creating silences (``POST /api/v2/silences``).

https://github.com/prometheus/alertmanager/blob/main/api/v2/openapi.yaml: a silence is ``matchers`` (name,
value, isRegex, isEqual), ``startsAt``, ``endsAt``, ``createdBy`` and ``comment``; the answer is
``{"silenceID": "…"}``. Transport failures, timeouts and 5xx become ``Unavailable("Alertmanager", …)``; a 4xx
(Alertmanager refused the silence) becomes ``Refused`` with its reason.
"""

from __future__ import annotations

from datetime import datetime

import httpx

from bot.config.alerting import Alertmanager
from bot.domain.alerts.ports import SilenceRequest
from bot.domain.shared.errors import Refused, Unavailable

NAME = "Alertmanager"
USER_AGENT = "opsbot-alertmanager/1"
MAX_REASON = 300


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class AlertmanagerSilences:
    """The ``Silences`` port on one Alertmanager (``alertmanager.url`` in the ops config)."""

    def __init__(self, config: Alertmanager, transport: httpx.BaseTransport | None = None) -> None:
        self._url = config.url
        self._timeout = config.timeout_seconds
        self._transport = transport

    def create(self, silence: SilenceRequest) -> str:
        body = {
            "matchers": [{"name": k, "value": v, "isRegex": False, "isEqual": True} for k, v in sorted(silence.matchers.items())],
            "startsAt": _iso(silence.starts_at),
            "endsAt": _iso(silence.ends_at),
            "createdBy": silence.created_by,
            "comment": silence.comment,
        }
        where = f"{self._url}/api/v2/silences"
        try:
            with httpx.Client(timeout=self._timeout, transport=self._transport, headers={"User-Agent": USER_AGENT}) as client:
                response = client.post(where, json=body)
        except httpx.TimeoutException:
            raise Unavailable(NAME, f"no answer from {self._url} within {self._timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise Unavailable(NAME, f"{self._url}: {type(exc).__name__}") from None
        if response.status_code >= 500:
            raise Unavailable(NAME, f"{self._url} answered {response.status_code}")
        if response.status_code >= 400:
            raise Refused(f"Alertmanager refused the silence ({response.status_code}): {response.text.strip()[:MAX_REASON]}")
        try:
            silence_id = response.json()["silenceID"]
        except (ValueError, KeyError, TypeError):
            raise Unavailable(NAME, f"{self._url} answered {response.status_code} without a silenceID") from None
        return str(silence_id)
