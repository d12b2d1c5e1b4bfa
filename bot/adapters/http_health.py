"""The health probe over HTTP: every check of every asked service at once, under one concurrency cap.

Each request has its own deadline covering connect, TLS, headers and the whole body (httpx's read
timeout alone restarts with every byte, so a server trickling one byte a second would never time
out), a read cap for huge bodies, and a redirect limit. Transport failures become short reasons a
person can act on. The verdicts (status codes, JSON expectations, latency) are the domain's.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from bot.adapters.metrics import Metrics
from bot.config import HealthCheck, OpsConfig, ServiceEnvironment
from bot.domain.health.judge import Observation, judge, overall, version_of
from bot.domain.health.model import HealthReport
from bot.domain.shared.errors import NotFound

USER_AGENT = "opsbot-health/1"
# httpcore's trace events, in the order a request goes through them, and what a person calls that step.
PHASES = (
    ("connect_tcp", "connecting"),
    ("start_tls", "in the TLS handshake"),
    ("send_request", "sending the request"),
    ("receive_response_headers", "waiting for a response"),
    ("receive_response_body", "reading the body"),
)


@dataclass
class Progress:
    """How far one request got, for a timeout reason that says where it stalled."""

    phase: str = "connecting"
    received: int = 0


class HttpHealthProbe:
    """``HealthProbe`` and ``HealthFanout`` on httpx + asyncio; one event loop per call, on the caller's thread."""

    def __init__(
        self,
        config: OpsConfig,
        environ: Mapping[str, str] | None = None,
        *,
        verify: ssl.SSLContext | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._config = config
        self._metrics = metrics
        self._environ = os.environ if environ is None else environ
        self._verify = verify

    def check(self, service: str, environment: str) -> HealthReport:
        return self.check_many([(service, environment)])[0]

    def check_many(self, targets: list[tuple[str, str]]) -> list[HealthReport]:
        specs = [self._spec(service, env) for service, env in targets]
        reports = asyncio.run(self._check_all(list(zip(targets, specs, strict=True))))
        if self._metrics is not None:
            for report in reports:
                self._metrics.health_checks.labels(report.status).inc()
        return reports

    def _spec(self, service: str, environment: str) -> ServiceEnvironment:
        found = self._config.services.get(service)
        if found is None:
            raise NotFound("service", service)
        spec = found.environments.get(environment)
        if spec is None:
            raise NotFound("environment", environment)
        return spec

    async def _check_all(self, work: list[tuple[tuple[str, str], ServiceEnvironment]]) -> list[HealthReport]:
        settings = self._config.health
        gate = asyncio.Semaphore(settings.concurrency)
        if self._verify is None:
            # One SSL context for the whole probe: building one per client costs more than a local check.
            self._verify = httpx.create_ssl_context()
        limits = httpx.Limits(max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency)
        async with httpx.AsyncClient(
            follow_redirects=True,
            max_redirects=settings.max_redirects,
            limits=limits,
            verify=self._verify,
            headers={"User-Agent": USER_AGENT},
        ) as client:
            fetcher = Fetcher(client, gate, settings.max_body_kb * 1024, settings.max_redirects)
            return list(await asyncio.gather(*(self._target(fetcher, service, env, spec) for (service, env), spec in work)))

    async def _target(self, fetcher: Fetcher, service: str, environment: str, spec: ServiceEnvironment) -> HealthReport:
        checks = asyncio.gather(*(self._observe(fetcher, check) for check in spec.health))
        seen, (version, version_error) = await asyncio.gather(checks, self._version(fetcher, spec))
        outcomes = [judge(check, observation) for check, observation in zip(spec.health, seen, strict=True)]
        return HealthReport(service, environment, overall(o.status for o in outcomes), outcomes, version, version_error)

    async def _observe(self, fetcher: Fetcher, check: HealthCheck) -> Observation:
        headers = dict(check.headers)
        for header, variable in check.headers_from_env.items():
            value = self._environ.get(variable)
            if not value:
                return Observation(error=f"header {header}: environment variable {variable} is not set")
            headers[header] = value
        return await fetcher.fetch(check.method, check.url, headers, check.timeout_ms)

    async def _version(self, fetcher: Fetcher, spec: ServiceEnvironment) -> tuple[str | None, str | None]:
        if spec.version_url is None:
            return None, None
        seen = await fetcher.fetch("GET", spec.version_url, {"Accept": "application/json"}, spec.version_timeout_ms)
        if seen.error:
            return None, f"version endpoint: {seen.error}"
        if seen.status_code is None or not 200 <= seen.status_code < 300:
            return None, f"version endpoint: status {seen.status_code}"
        if seen.truncated_at is not None:
            return None, "version endpoint: body too large"
        version, problem = version_of(seen.body, seen.content_type, spec.version_json_key)
        return version, (f"version endpoint: {problem}" if problem else None)


class Fetcher:
    """One request at a time per concurrency slot: observe it, or say why it failed."""

    def __init__(self, client: httpx.AsyncClient, gate: asyncio.Semaphore, cap: int, max_redirects: int) -> None:
        self._client = client
        self._gate = gate
        self._cap = cap
        self._max_redirects = max_redirects

    async def fetch(self, method: str, url: str, headers: dict[str, str], timeout_ms: int) -> Observation:
        async with self._gate:  # waiting for a slot is not the service's latency: the clock starts after
            progress = Progress()
            started = time.perf_counter()

            def elapsed() -> float:
                return (time.perf_counter() - started) * 1000

            try:
                async with asyncio.timeout(timeout_ms / 1000):
                    return await self._request(method, url, headers, timeout_ms, progress, elapsed)
            except (TimeoutError, httpx.TimeoutException):  # our deadline, or httpx's connect/read timeout
                return Observation(latency_ms=elapsed(), error=timeout_reason(timeout_ms, progress))
            except httpx.TooManyRedirects:
                return Observation(latency_ms=elapsed(), error=f"redirect loop: more than {self._max_redirects} redirects")
            except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
                return Observation(error=f"invalid URL: {exc}"[:160])
            except Exception as exc:  # every other failure is a failed check with a reason, never an error
                return Observation(latency_ms=elapsed(), error=transport_reason(exc, url))

    async def _request(
        self, method: str, url: str, headers: dict[str, str], timeout_ms: int, progress: Progress, elapsed: Callable[[], float]
    ) -> Observation:
        async def trace(event: str, info: dict[str, Any]) -> None:
            for step, phase in PHASES:
                if step in event and event.endswith(".started"):
                    progress.phase = phase

        request = self._client.build_request(method, url, headers=headers, timeout=timeout_ms / 1000, extensions={"trace": trace})
        response = await self._client.send(request, stream=True)
        try:
            progress.phase = "reading the body"
            body, truncated = await self._read(response, progress)
        finally:
            await response.aclose()
        return Observation(
            latency_ms=elapsed(),
            status_code=response.status_code,
            body=body,
            content_type=response.headers.get("content-type", ""),
            truncated_at=self._cap if truncated else None,
        )

    async def _read(self, response: httpx.Response, progress: Progress) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        async for chunk in response.aiter_bytes():
            progress.received += len(chunk)
            if progress.received > self._cap:
                return b"".join(chunks), True
            chunks.append(chunk)
        return b"".join(chunks), False


def timeout_reason(timeout_ms: int, progress: Progress) -> str:
    if progress.phase == "reading the body":
        return f"timeout after {timeout_ms} ms reading the body ({progress.received} bytes so far)"
    return f"timeout after {timeout_ms} ms {progress.phase}"


def transport_reason(exc: BaseException, url: str) -> str:
    """A failed request as a person would describe it: DNS, refused, TLS, a broken answer …"""
    chain = _causes(exc)
    for cause in chain:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS error: certificate not trusted ({cause.verify_message or cause.reason})"
        if isinstance(cause, ssl.SSLError):
            reason = (cause.reason or str(cause)).lower().replace("_", " ")
            hint = " (is it plain HTTP?)" if "wrong version" in reason or "record layer" in reason else ""
            return f"TLS error: {reason}{hint}"
        if isinstance(cause, socket.gaierror):
            return f"DNS failure: cannot resolve {httpx.URL(url).host}"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset by the server"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"bad HTTP answer: {str(exc)[:100] or 'server disconnected'}"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {str(exc)[:100]}"
    return f"request failed: {type(exc).__name__}"


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    node: BaseException | None = exc
    while node is not None and node not in seen:
        seen.append(node)
        node = node.__cause__ or node.__context__
    return seen
