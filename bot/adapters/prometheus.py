"""``MetricsReader`` on Prometheus' HTTP API: instant queries (``GET /api/v1/query``), one number each.

Every way a query can fail to give one number becomes ``MetricUnreadable`` with a reason a person can act on:
Prometheus unreachable or slower than ``timeout_ms``, an HTTP error (401/403: the token), a query Prometheus
refuses (``bad_data``: its parser's message), no series, several series where one was expected. The bearer
token is read from ``token_env`` at each call and never appears in a reason or a log line.

API reference: https://prometheus.io/docs/prometheus/latest/querying/api/ (response envelope, ``time``,
``timeout``, ``errorType``; ``/api/v1/format_query`` parses without evaluating, Prometheus ≥ 2.38).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from bot.config import Prometheus
from bot.domain.shared.metrics import MetricUnreadable

USER_AGENT = "opsbot-guardrails/1"
BAD_QUERY = 'invalid parameter "query": '  # Prometheus' prefix to its parser's message
SHOWN_LABELS = 3  # series named in a "several series" reason


class PrometheusReader:
    """Instant queries against one Prometheus, over one keep-alive connection pool (safe to share between threads)."""

    def __init__(self, settings: Prometheus, environ: Mapping[str, str] | None = None) -> None:
        self._settings = settings
        self._environ = os.environ if environ is None else environ
        self._url = settings.url.rstrip("/")
        self._made: httpx.Client | None = None
        self._making = threading.Lock()

    @property
    def _client(self) -> httpx.Client:
        """Made on the first query, not at start: an httpx client loads the CA bundle (about 0.2 s of
        `opsbot console`'s start-up, bench/console_startup.py) and most processes never read a metric."""
        with self._making:
            if self._made is None:
                self._made = httpx.Client(timeout=self._settings.timeout_ms / 1000, headers={"User-Agent": USER_AGENT})
            return self._made

    def close(self) -> None:
        with self._making:
            if self._made is not None:
                self._made.close()

    def _headers(self) -> dict[str, str]:
        variable = self._settings.token_env
        token = self._environ.get(variable) if variable else None
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _call(self, path: str, params: dict[str, str]) -> Any:
        """The ``data`` of a successful API answer; raises MetricUnreadable."""
        where = f"Prometheus at {self._url}"
        try:
            response = self._client.get(self._url + path, params=params, headers=self._headers())
        except httpx.TimeoutException:
            raise MetricUnreadable(f"{where} did not answer within {self._settings.timeout_ms} ms") from None
        except httpx.HTTPError as exc:
            raise MetricUnreadable(f"{where} is unreachable ({type(exc).__name__})") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("status") == "error":
            kind, error = body.get("errorType", "error"), str(body.get("error", ""))[:300]
            if kind == "bad_data":
                raise MetricUnreadable(f"Prometheus refused the query: {error.removeprefix(BAD_QUERY)}")
            raise MetricUnreadable(f"{where} answered {response.status_code} ({kind}: {error})")
        if response.status_code in (401, 403):
            raise MetricUnreadable(
                f"{where} answered {response.status_code}: check the token in the prometheus.token_env variable"
            )
        if response.status_code != 200 or not isinstance(body, dict) or "data" not in body:
            raise MetricUnreadable(f"{where} answered {response.status_code} without a query result")
        return body["data"]

    def read(self, query: str, *, at: datetime | None = None) -> float:
        """The single value of ``query`` at ``at`` (Prometheus' "now" when None); raises MetricUnreadable."""
        params = {"query": query, "timeout": f"{self._settings.timeout_ms}ms"}
        if at is not None:
            params["time"] = f"{at.timestamp():.3f}"
        data = self._call("/api/v1/query", params)
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar":
            return _number(result[1])
        if kind != "vector" or not isinstance(result, list):
            raise MetricUnreadable(f"the query gave a {kind}, not one number (an instant vector or a scalar)")
        return _number(_one_series(result)["value"][1])

    def read_range(self, query: str, *, start: datetime, end: datetime, step_seconds: float) -> list[tuple[datetime, float]]:
        """The one series of ``query`` over [start, end] (``GET /api/v1/query_range``); NaN points are left out.

        Raises MetricUnreadable as ``read`` does; no series, or several, are unreadable too."""
        params = {
            "query": query,
            "start": f"{start.timestamp():.3f}",
            "end": f"{end.timestamp():.3f}",
            "step": f"{max(step_seconds, 1.0):.3f}",
            "timeout": f"{self._settings.timeout_ms}ms",
        }
        data = self._call("/api/v1/query_range", params)
        result = data.get("result")
        if data.get("resultType") != "matrix" or not isinstance(result, list):
            raise MetricUnreadable(f"the query gave a {data.get('resultType')}, not a series over time")
        points = [(datetime.fromtimestamp(float(t), UTC), _number(v)) for t, v in _one_series(result).get("values", [])]
        return [(t, v) for t, v in points if not math.isnan(v)]

    def check_query(self, query: str) -> str | None:
        """Prometheus' own parser on ``query`` (``/api/v1/format_query``): its error, or None when it parses.

        Raises MetricUnreadable when Prometheus cannot be asked (unreachable, or too old to have the endpoint)."""
        try:
            self._call("/api/v1/format_query", {"query": query})
        except MetricUnreadable as exc:
            if exc.reason.startswith("Prometheus refused the query: "):
                return exc.reason.removeprefix("Prometheus refused the query: ")
            raise
        return None


def _number(text: Any) -> float:
    try:
        return float(text)  # Prometheus sends sample values as strings: "0.05", "NaN", "+Inf"
    except (TypeError, ValueError):
        raise MetricUnreadable(f"Prometheus sent {str(text)[:40]!r}, not a number") from None


def _labels(metric: Mapping[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items()))[:120] + "}"


def promtool_check(queries: Mapping[str, str], promtool: str | None = None) -> dict[str, str] | None:
    """Each query that ``promtool check rules`` refuses, with its error (``{}``: all parse); None without promtool.

    The queries become recording rules in a temporary rules file, the form promtool parses PromQL in."""
    exe = promtool or shutil.which("promtool")
    if exe is None:
        return None
    problems: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="opsbot-promtool-") as folder:
        for where, query in queries.items():
            rules = Path(folder) / "rules.yml"
            rules.write_text(
                yaml.safe_dump({"groups": [{"name": "opsbot", "rules": [{"record": "opsbot_check", "expr": query}]}]})
            )
            run = subprocess.run([exe, "check", "rules", str(rules)], capture_output=True, text=True, timeout=30, check=False)
            if run.returncode != 0:
                lines = [line.strip() for line in (run.stderr + run.stdout).splitlines() if line.strip()]
                marker = "could not parse expression: "
                detail = next((line.split(marker, 1)[1] for line in lines if marker in line), lines[-1] if lines else "")
                problems[where] = detail[:300] or "promtool refused it"
    return problems


def _one_series(result: list[Any]) -> Any:
    """The one series of a query's ``result``; raises MetricUnreadable naming what came back instead."""
    if not result:
        raise MetricUnreadable("the query returned no series (no data for this service yet, or a label that matches nothing)")
    if len(result) > 1:
        names = ", ".join(_labels(series.get("metric", {})) for series in result[:SHOWN_LABELS])
        more = "…" if len(result) > SHOWN_LABELS else ""
        raise MetricUnreadable(
            f"the query returned {len(result)} series where one was expected ({names}{more}); aggregate it, e.g. with sum()"
        )
    return result[0]
