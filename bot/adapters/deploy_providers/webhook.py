"""The `webhook` deploy provider: a signed JSON POST, retried with backoff, idempotent per deploy.

The receiver verifies ``X-Opsbot-Signature: sha256=HMAC_SHA256(secret, "{timestamp}." + body)``
with the timestamp from ``X-Opsbot-Timestamp``, and deduplicates on ``Idempotency-Key`` (the deploy
id, the same on every retry), so a retry after a lost response never deploys twice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable, Mapping

import httpx

from bot.config import WebhookProvider
from bot.domain.deploys.model import DeployOrder, ProviderResult, StopSignal
from bot.domain.shared.text import plural

BODY_TAIL_CHARS = 1000
MAX_BACKOFF_SECONDS = 60.0


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def body_of(order: DeployOrder) -> bytes:
    return json.dumps(
        {
            "deploy_id": order.deploy_id,
            "kind": order.kind.value,
            "service": order.service,
            "environment": order.environment,
            "version": order.version,
            "previous_version": order.previous_version,
            "requester": order.requester,
            "reason": order.reason,
        },
        sort_keys=True,
    ).encode()


class WebhookDeploy:
    def __init__(
        self,
        spec: WebhookProvider,
        environ: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._spec = spec
        self._environ = os.environ if environ is None else environ
        self._sleep = sleep
        self._transport = transport

    def describe(self, order: DeployOrder) -> str:
        return (
            f"POSTs the deploy as signed JSON to {self._spec.url} (secret from ${self._spec.secret_env}, "
            f"up to {self._spec.retries} retries, idempotency key {order.deploy_id})"
        )

    def deploy(self, order: DeployOrder, stop: StopSignal) -> ProviderResult:
        secret = self._environ.get(self._spec.secret_env, "")
        if not secret:
            return ProviderResult(False, f"the webhook secret is missing: set the environment variable {self._spec.secret_env}")
        body = body_of(order)
        last = "no attempt made"
        attempts = self._spec.retries + 1
        with httpx.Client(timeout=self._spec.timeout_seconds, transport=self._transport) as client:
            for attempt in range(attempts):
                if stop.stopped:  # a request already sent cannot be taken back; no further one is sent
                    return ProviderResult(False, f"stopped before attempt {attempt + 1}: {stop.reason}")
                outcome = self._post(client, order, body, secret)
                if isinstance(outcome, ProviderResult):
                    return outcome
                last = outcome
                if attempt + 1 < attempts:
                    self._sleep(min(self._spec.backoff_seconds * 2**attempt, MAX_BACKOFF_SECONDS))
        return ProviderResult(False, f"webhook {last} after {plural(attempts, 'attempt')}")

    def _post(self, client: httpx.Client, order: DeployOrder, body: bytes, secret: str) -> ProviderResult | str:
        """A final result, or the reason this attempt may be retried."""
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "opsbot",
            "Idempotency-Key": order.deploy_id,
            "X-Opsbot-Timestamp": timestamp,
            "X-Opsbot-Signature": sign(secret, timestamp, body),
        }
        try:
            response = client.post(self._spec.url, content=body, headers=headers)
        except httpx.TimeoutException:
            return f"timed out after {self._spec.timeout_seconds:g}s"
        except httpx.TransportError as exc:
            return f"connection failed ({type(exc).__name__})"
        text = response.text[-BODY_TAIL_CHARS:]
        if response.is_success:
            return ProviderResult(True, f"webhook answered HTTP {response.status_code}", text)
        if response.status_code >= 500 or response.status_code == 429:
            return f"answered HTTP {response.status_code}"
        return ProviderResult(False, f"webhook refused the deploy: HTTP {response.status_code}", text)
