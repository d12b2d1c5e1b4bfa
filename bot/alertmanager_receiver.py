"""`POST /alertmanager` on `opsbot serve`: Alertmanager's webhook (version 4) in, one Slack message per alert group.

Alertmanager authenticates with ``Authorization: Bearer <OPSBOT_ALERTMANAGER_TOKEN>`` (its webhook_config's
``http_config.authorization``). Answers, each a JSON object with the reason:

- 200 ``{"status": "accepted", "group": "ag-…", "message": "posted|updated|unchanged"}``: recorded, and the message's
  post or edit is in the outbox (delivered at once or by `opsbot worker`; never twice);
- 400 the body is not Alertmanager's webhook JSON (the reason names the field); 401 the token is missing or wrong
  (nothing is recorded); 413 the body is over ``MAX_BODY_BYTES``; 405 not a POST;
- 503 ``OPSBOT_ALERTMANAGER_TOKEN`` is not set (the endpoint is off), or the database is unreachable: Alertmanager
  retries a 5xx, so nothing is lost once either is fixed.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.domain.alerts.model import Alert, GroupStatus, Notification
from bot.domain.alerts.service import Alerts
from bot.domain.shared.errors import Unavailable
from bot.settings import Settings

log = logging.getLogger("opsbot.alertmanager")
PATH = "/alertmanager"
MAX_BODY_BYTES = 512 * 1024  # a group of hundreds of alerts fits; Alertmanager's max_alerts trims bigger ones
MAX_LABEL = 1024  # characters in one label or annotation name; values are capped at MAX_VALUE
MAX_VALUE = 8192
NO_END_BEFORE = 1971  # Alertmanager sends 0001-01-01T00:00:00Z for "no end known"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


Labels = dict[str, str]


class WebhookAlert(_Model):
    status: Literal["firing", "resolved"]
    labels: Labels
    annotations: Labels = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL", max_length=MAX_VALUE)
    fingerprint: str = Field(default="", max_length=200)


class Webhook(_Model):
    """Alertmanager's webhook body, version 4 (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config)."""

    version: Literal["4"]
    group_key: str = Field(alias="groupKey", min_length=1, max_length=MAX_VALUE)
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts", ge=0)
    status: Literal["firing", "resolved"]
    receiver: str = Field(max_length=1000)
    group_labels: Labels = Field(alias="groupLabels")
    common_labels: Labels = Field(alias="commonLabels")
    common_annotations: Labels = Field(alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL", max_length=MAX_VALUE)
    alerts: list[WebhookAlert] = Field(min_length=1)

    def notification(self) -> Notification:
        return Notification(
            receiver=self.receiver,
            status=GroupStatus(self.status),
            group_key=self.group_key,
            group_labels=_capped(self.group_labels),
            common_labels=_capped(self.common_labels),
            common_annotations=_capped(self.common_annotations),
            external_url=self.external_url,
            alerts=tuple(
                Alert(
                    status=GroupStatus(a.status),
                    labels=_capped(a.labels),
                    annotations=_capped(a.annotations),
                    starts_at=a.starts_at,
                    ends_at=a.ends_at if a.ends_at is not None and a.ends_at.year >= NO_END_BEFORE else None,
                    fingerprint=a.fingerprint,
                    generator_url=a.generator_url,
                )
                for a in self.alerts
            ),
            truncated_alerts=self.truncated_alerts,
        )


def _capped(labels: Labels) -> Labels:
    return {k[:MAX_LABEL]: v[:MAX_VALUE] for k, v in labels.items()}


def _reason(error: ValidationError) -> str:
    """The first problem, with where it is: ``alerts[0].startsAt: Input should be a valid datetime``."""
    first = error.errors()[0]
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]).lstrip(".")
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where or 'body'}: {first['msg']}{more}"


def _answer(start_response: Callable[..., Any], status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def _read_body(environ: dict[str, Any]) -> bytes | None:
    """The request body, or None when it is over ``MAX_BODY_BYTES`` (read no further than that)."""
    try:
        declared = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY_BYTES:
        return None
    stream = environ["wsgi.input"]
    data = stream.read(declared) if declared else stream.read(MAX_BODY_BYTES + 1)
    return None if len(data) > MAX_BODY_BYTES else data


def _authorized(environ: dict[str, Any], token: str) -> bool:
    scheme, _, given = str(environ.get("HTTP_AUTHORIZATION") or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def receive(environ: dict[str, Any], start_response: Callable[..., Any], settings: Settings, alerts: Alerts) -> Iterable[bytes]:
    """Handle one request to ``POST /alertmanager`` (see the module's docstring for the answers)."""
    if environ.get("REQUEST_METHOD") != "POST":
        return _answer(start_response, "405 Method Not Allowed", {"error": "Alertmanager's webhook is a POST"})
    secret = settings.opsbot_alertmanager_token
    token = secret.get_secret_value().strip() if secret is not None else ""
    if not token:
        return _answer(
            start_response,
            "503 Service Unavailable",
            {"error": "OPSBOT_ALERTMANAGER_TOKEN is not set: opsbot does not accept alerts until it is (docs/alerts.md)"},
        )
    if not _authorized(environ, token):
        log.warning("refused an Alertmanager notification: missing or wrong bearer token")
        return _answer(start_response, "401 Unauthorized", {"error": "missing or wrong bearer token"})
    body = _read_body(environ)
    if body is None:
        return _answer(start_response, "413 Content Too Large", {"error": f"the body is over {MAX_BODY_BYTES} bytes"})
    try:
        webhook = Webhook.model_validate_json(body)
    except ValidationError as exc:
        return _answer(start_response, "400 Bad Request", {"error": _reason(exc)})
    try:
        received = alerts.receive(webhook.notification())
    except Unavailable as exc:
        log.error("could not record an Alertmanager notification: %s", exc.message)
        return _answer(start_response, "503 Service Unavailable", {"error": f"{exc.what} is unreachable; retry"})
    outcome = "posted" if received.new_message else "updated" if received.changed else "unchanged"
    group = received.group
    log.info("alert group %s (%s) %s: %s", group.id, group.name, group.status.value, outcome)
    return _answer(
        start_response, "200 OK", {"status": "accepted", "group": group.id, "message": outcome, "waiting": received.pending}
    )
