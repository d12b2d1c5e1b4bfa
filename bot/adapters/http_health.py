"""The health probe over HTTP: every check of every asked service at once, under one concurrency cap.

Each request has its own deadline covering connect, TLS, headers and the whole body, a read cap for huge bodies,
and a redirect limit (``bot.adapters.health_fetcher``). Transport failures become short reasons a person can act
on. The verdicts (status codes, JSON expectations, latency) are the domain's.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING

from bot.adapters.metrics import Metrics
from bot.config import HealthCheck, OpsConfig, ServiceEnvironment
from bot.domain.health.judge import Observation, judge, overall, version_of
from bot.domain.health.model import HealthReport
from bot.domain.shared.errors import NotFound

if TYPE_CHECKING:
    from bot.adapters.health_fetcher import Fetcher


class HttpHealthProbe:
    """``HealthProbe`` and ``HealthFanout`` on aiohttp + asyncio; one event loop per call, on the caller's thread."""

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
        from bot.adapters.health_fetcher import Fetcher  # aiohttp loads with the first check, not with every start-up

        async with Fetcher.open(self._config.health, self._verify) as fetcher:
            return list(await asyncio.gather(*(self._target(fetcher, service, env, spec) for (service, env), spec in work)))

    async def _target(self, fetcher: Fetcher, service: str, environment: str, spec: ServiceEnvironment) -> HealthReport:
        if len(spec.health) == 1 and spec.version_url is None:  # the usual case: no task more than the service's own
            seen, (version, version_error) = [await self._observe(fetcher, spec.health[0])], (None, None)
        else:
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
