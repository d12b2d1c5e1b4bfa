"""Prometheus metrics: one ``Metrics`` per process (built by the wiring), and the adapters that feed it at the edges.

Names follow Prometheus conventions (``opsbot_`` prefix, ``_total`` counters, ``_seconds`` histograms). Under
gunicorn (`opsbot serve`) ``PROMETHEUS_MULTIPROC_DIR`` is set before any worker starts (``bot.server``): every
worker writes its samples to files there and a scrape, whichever worker answers it, adds them up. Gauges read at
scrape time (the outbox) are read by the worker that answers, from the database they all share.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.domain.shared.policy import Actor
from bot.domain.shared.ports import AuditEntry, AuditLog, AuditQuery, AuditRecord, Clock

log = logging.getLogger("opsbot.requests")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The audit's `<kind>.<step>` rows that end a deploy or rollback, and the outcome each one counts as.
DEPLOY_ENDINGS = {
    "succeeded": "succeeded",
    "failed": "failed",
    "lock_lost": "lock_lost",
    "stopped": "cancelled",
    "cancelled": "cancelled",
    "rejected": "rejected",
    "expired": "expired",
    "unknown": "unknown",
    "abandoned": "unknown",
    "rolled_back": "rolled_back",
    "not_started": None,  # the row's outcome says which (cancelled, lock_lost …)
}
APPROVAL_DECISIONS = {"approved", "rejected", "expired"}
REQUEST_KINDS = {"command": "command", "click": "action", "modal": "action", "event": "event", "job": "job"}


class Metrics:
    """Every opsbot metric on a registry of its own (tests build many runtimes in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._scraped: list[Collector] = []  # read at scrape time, in this process
        r = self.registry
        self.requests = Counter(
            "opsbot_requests_total",
            "Commands, clicks, events and jobs run by the dispatcher",
            ["kind", "name", "outcome"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "opsbot_request_duration_seconds", "Time the dispatcher took to run a request, by kind", ["kind"], registry=r
        )
        self.ack_seconds = Histogram(
            "opsbot_ack_duration_seconds",
            "Time from a Slack request reaching the app to its acknowledgement",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0),
            registry=r,
        )
        self.deploys = Counter(
            "opsbot_deploys_total", "Deploys and rollbacks that ended, by outcome", ["kind", "outcome"], registry=r
        )
        self.approvals = Counter(
            "opsbot_approvals_total",
            "Approval requests decided, by what they were for and the decision",
            ["kind", "outcome"],
            registry=r,
        )
        self.slack_calls = Counter(
            "opsbot_slack_api_calls_total", "Slack Web API attempts, by method and HTTP status", ["method", "status"], registry=r
        )
        self.reconciler_runs = Counter("opsbot_reconciler_runs_total", "Reconciler rounds run by this process", registry=r)
        self.reconciler_repairs = Counter("opsbot_reconciler_repairs_total", "Repairs the reconciler made", registry=r)
        self.jobs_queued = Counter("opsbot_jobs_queued_total", "Background jobs queued, by job", ["job"], registry=r)
        self.jobs_failed = Counter("opsbot_jobs_failed_total", "Background jobs that failed, by job", ["job"], registry=r)
        self.health_checks = Counter("opsbot_health_checks_total", "Health checks of services, by result", ["result"], registry=r)

    def scrape_time(self, collector: Collector) -> None:
        """Add a collector read at each scrape (a gauge from the database)."""
        self._scraped.append(collector)
        self.registry.register(collector)

    def exposition(self) -> bytes:
        """The text a scrape gets: every process's samples under gunicorn, this process's otherwise."""
        folder = os.environ.get(MULTIPROC_ENV)
        if not folder:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
        for collector in self._scraped:
            registry.register(collector)
        return generate_latest(registry)

    def request_finished(self, action: str, outcome: str, seconds: float) -> None:
        kind, name = request_kind(action)
        self.requests.labels(kind, name, outcome).inc()
        self.request_seconds.labels(kind).observe(seconds)


def request_kind(action: str) -> tuple[str, str]:
    """``command.deploy`` → (``command``, ``deploy``); ``click.approve`` → (``action``, ``approve``)."""
    prefix, _, name = action.partition(".")
    return REQUEST_KINDS.get(prefix, "other"), name or prefix


class RequestLog:
    """The dispatcher's ``RequestObserver``: counts each request and writes one log line about it (who, what, how it ended,
    how long it took) that ``LOG_FORMAT=json`` turns into one JSON object."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def finished(self, actor: Actor, action: str, outcome: str, seconds: float) -> None:
        self._metrics.request_finished(action, outcome, seconds)
        kind, name = request_kind(action)
        fields: dict[str, Any] = {
            "kind": kind,
            "command" if kind == "command" else "action": name,
            "trigger_id": actor.request_id,
            "user": actor.user_id,
            "channel": actor.channel_id,
            "source": actor.source,
            "outcome": outcome,
            "duration_ms": round(seconds * 1000, 1),
        }
        level = logging.WARNING if outcome == "error" else logging.INFO
        log.log(level, "%s %s by %s: %s in %.1f ms", kind, name, actor.user_id, outcome, seconds * 1000, extra={"opsbot": fields})


class MeteredAuditLog:
    """The audit log, counting the rows that end a deploy or decide an approval on their way in."""

    def __init__(self, inner: AuditLog, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    def record(self, entry: AuditEntry) -> AuditRecord:
        record = self._inner.record(entry)
        kind, _, step = entry.action.partition(".")
        if kind in ("deploy", "rollback") and step in DEPLOY_ENDINGS:
            self._metrics.deploys.labels(kind, DEPLOY_ENDINGS[step] or entry.outcome).inc()
        # A deploy to an environment that needs no approval is "approved" by nobody: no approval was decided.
        needed = step != "approved" or bool(entry.params.get("approvers"))
        if step in APPROVAL_DECISIONS and kind not in ("click", "command", "job") and needed:
            self._metrics.approvals.labels(kind, step).inc()
        return record

    def query(self, query: AuditQuery) -> list[AuditRecord]:
        return self._inner.query(query)

    def head(self) -> tuple[int, str]:
        return self._inner.head()

    def __getattr__(self, name: str) -> Any:  # rows(), verify() … for the audit family and tests
        return getattr(self._inner, name)


class SlackCallCounter(RetryHandler):
    """Counts every Slack Web API attempt (429s and retries included) by method and HTTP status; never retries.

    slack_sdk asks its retry handlers about every response and every failed connection, first one first."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__(max_retry_count=1_000_000)
        self._metrics = metrics

    def __deepcopy__(self, memo: dict[int, Any]) -> SlackCallCounter:
        return self  # Bolt deep-copies a request (and its client) for lazy listeners; the counts are one per process

    def _can_retry(
        self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None, error: Exception | None = None
    ) -> bool:
        method = urlsplit(request.url).path.rsplit("/", 1)[-1] or "unknown"
        status = str(response.status_code) if response is not None else str(getattr(error, "code", "") or "error")
        self._metrics.slack_calls.labels(method, status).inc()
        return False


class OutboxReads(Protocol):
    def pending_summary(self) -> tuple[int, datetime | None]: ...


class OutboxCollector(Collector):
    """Outbox depth and the age of its oldest pending effect, read from the database at each scrape."""

    def __init__(self, outbox: OutboxReads, clock: Clock) -> None:
        self._outbox = outbox
        self._clock = clock

    def describe(self) -> Iterable[Metric]:
        return []  # read at scrape time only: registering must not touch the database

    def collect(self) -> Iterator[Metric]:
        try:
            pending, oldest = self._outbox.pending_summary()
        except Exception as exc:  # the database is away: the scrape still answers, without these gauges
            log.warning("outbox gauges unavailable: %s", type(exc).__name__)
            return
        age = max(0.0, (self._clock.now() - oldest).total_seconds()) if oldest is not None else 0.0
        yield GaugeMetricFamily("opsbot_outbox_pending", "Effects waiting in the outbox for delivery", value=pending)
        yield GaugeMetricFamily(
            "opsbot_outbox_oldest_pending_age_seconds", "Age of the oldest effect waiting in the outbox", value=age
        )
