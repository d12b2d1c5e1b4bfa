"""A real Prometheus (Debian's ``prometheus`` 2.42) scraping a small application that serves traffic in this process.

- ``TrafficApp`` exports ``http_requests_total{service, run, status}`` and the histogram
  ``http_request_duration_seconds{service, run}`` with prometheus-client on a free loopback port. A background
  thread "serves" ``REQUESTS_PER_TICK`` requests every ``TICK_S`` for each registered run; each run's error
  rate and latency follow the version deployed to it (the file the deploy program writes), so a deploy of a bad
  version raises them while it is verified. A ``run`` label per test keeps tests apart in one Prometheus.
- ``PrometheusServer`` is ``/usr/bin/prometheus`` with a temporary data directory on a free loopback port,
  scraping the app every second. Missing, the run stops with one line: ``apt install prometheus``.
- ``ERROR_RATE`` and ``LATENCY_P95`` are the guardrail queries the tests configure (``{service}`` filled in by opsbot).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from tests.servers import SharedServers, free_port

TICK_S = 0.1
REQUESTS_PER_TICK = 20  # 200 requests a second per run
SCRAPE = "1s"
RATE = "4s"  # the rate() window of the test queries: four scrapes
# 10 ms buckets from 50 to 250 ms (p95 reads close to the latency the tests set), coarse ones around them: 27 in all
BUCKETS = (0.005, 0.01, 0.025, *(round(0.01 * i, 2) for i in range(5, 26)), 0.5, 1.0, 2.5)
ERROR_RATE = (  # `or vector(0)` as docs/metrics.md advises: no 5xx series exists before the first error
    '(sum(rate(http_requests_total{{service="{{service}}",run="{run}",status=~"5.."}}[{rate}])) or vector(0)) '
    '/ sum(rate(http_requests_total{{service="{{service}}",run="{run}"}}[{rate}]))'
)
LATENCY_P95 = (
    'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{{service="{{service}}",run="{run}"}}[{rate}])))'
    " * 1000"
)


def error_rate_query(run: str) -> str:
    return ERROR_RATE.format(run=run, rate=RATE)


def latency_query(run: str) -> str:
    return LATENCY_P95.format(run=run, rate=RATE)


@dataclass
class Behaviour:
    error_rate: float = 0.0  # share of requests answered 5xx
    latency_ms: float = 100.0  # what every request takes


@dataclass
class Run:
    """One test's traffic: ``service`` as labelled, behaving as ``by_version`` says for the version in ``version_file``."""

    service: str
    version_file: Path | None
    normal: Behaviour
    by_version: dict[str, Behaviour] = field(default_factory=dict)
    errors_owed: float = 0.0

    def behaviour(self) -> Behaviour:
        if self.version_file is not None and self.version_file.exists():
            return self.by_version.get(self.version_file.read_text().strip(), self.normal)
        return self.normal


class TrafficApp:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("http_requests", "Requests served", ["service", "run", "status"], registry=self.registry)
        self.duration = Histogram(
            "http_request_duration_seconds", "Request latency", ["service", "run"], buckets=BUCKETS, registry=self.registry
        )
        self.runs: dict[str, Run] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.port = free_port()
        self.server, _ = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)
        self._thread = threading.Thread(target=self._serve, name="traffic", daemon=True)
        self._thread.start()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def add(self, run: str, run_spec: Run) -> None:
        with self._lock:
            self.runs[run] = run_spec

    def _serve(self) -> None:
        while not self._stop.wait(TICK_S):
            with self._lock:
                runs = list(self.runs.items())
            for name, run in runs:
                now = run.behaviour()
                run.errors_owed += REQUESTS_PER_TICK * now.error_rate
                errors = int(run.errors_owed)
                run.errors_owed -= errors
                if errors:  # like a real service: the 5xx series appears with the first error
                    self.requests.labels(run.service, name, "500").inc(errors)
                self.requests.labels(run.service, name, "200").inc(REQUESTS_PER_TICK - errors)
                for _ in range(REQUESTS_PER_TICK):
                    self.duration.labels(run.service, name).observe(now.latency_ms / 1000)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.server.shutdown()
        self.server.server_close()


class PrometheusServer:
    """``prometheus`` on 127.0.0.1 with a temporary data directory, scraping ``targets`` every second."""

    def __init__(self, exe: str, targets: list[str], history: str | None = None) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="opsbot-test-prometheus-"))
        self.port = free_port()
        if history is not None:
            backfill(exe, history, self.workdir)
        config = {
            "global": {"scrape_interval": SCRAPE, "evaluation_interval": SCRAPE},
            "scrape_configs": [{"job_name": "app", "static_configs": [{"targets": targets}]}],
        }
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = (self.workdir / "prometheus.log").open("w")
        self.process = subprocess.Popen(
            [
                exe,
                f"--config.file={self.workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self._wait_ready()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if httpx.get(self.url + "/-/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.close()
        tail = (self.workdir / "prometheus.log").read_text()[-2000:]
        pytest.fail(f"prometheus did not become ready on {self.url}:\n{tail}", pytrace=False)

    def query(self, promql: str) -> list[dict[str, Any]]:
        answer = httpx.get(self.url + "/api/v1/query", params={"query": promql}, timeout=5).json()
        return list(answer["data"]["result"])

    def wait_for_history(self, promql: str, seconds: float) -> None:
        """Until ``promql`` has given a value for ``seconds`` (the baseline window has data), at most a minute."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            window = f"count_over_time(({promql})[{round(seconds)}s:1s])"
            result = self.query(window)
            if result and float(result[0]["value"][1]) >= seconds - 1:
                return
            time.sleep(0.5)
        pytest.fail(f"Prometheus at {self.url} has no {seconds:.0f} s of history for {promql}", pytrace=False)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


def history(run: str, service: str, seconds: int, behaviour: Behaviour, until: float) -> str:
    """``seconds`` of ``run``'s traffic up to ``until`` (unix time), one sample a second, as OpenMetrics text for
    ``promtool tsdb create-blocks-from openmetrics``: the backfilled history a long baseline window needs."""
    rate = REQUESTS_PER_TICK / TICK_S
    start = int(until) - seconds
    labels = f'service="{service}",run="{run}"'
    requests, buckets = ["# TYPE http_requests counter"], ["# TYPE http_request_duration_seconds histogram"]
    for t in range(start, int(until)):
        served = (t - start) * rate
        errors = int(served * behaviour.error_rate)
        requests.append(f'http_requests_total{{{labels},status="200"}} {served - errors} {t}')
        if errors:
            requests.append(f'http_requests_total{{{labels},status="500"}} {errors} {t}')
        for le in (*BUCKETS, "+Inf"):
            inside = served if le == "+Inf" or behaviour.latency_ms / 1000 <= float(le) else 0
            buckets.append(f'http_request_duration_seconds_bucket{{{labels},le="{le}"}} {inside} {t}')
        buckets.append(f"http_request_duration_seconds_count{{{labels}}} {served} {t}")
        buckets.append(f"http_request_duration_seconds_sum{{{labels}}} {served * behaviour.latency_ms / 1000} {t}")
    return "\n".join([*requests, *buckets, "# EOF"]) + "\n"


def backfill(exe: str, text: str, workdir: Path) -> None:
    """Write ``text`` (OpenMetrics) into ``workdir/data`` as TSDB blocks with promtool, before Prometheus starts there."""
    promtool = shutil.which("promtool") or str(Path(exe).with_name("promtool"))
    source = workdir / "history.om"
    source.write_text(text)
    made = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(workdir / "data")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if made.returncode != 0:
        pytest.fail(f"promtool could not backfill the history: {made.stderr[-2000:]}", pytrace=False)


def prometheus_binary(servers: SharedServers) -> str:
    exe = shutil.which("prometheus") or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)
    if exe is None:
        servers.fatal("prometheus is not installed: apt install prometheus")
    return exe


@dataclass
class Metrics:
    app: TrafficApp
    prometheus: PrometheusServer


@pytest.fixture(scope="module")
def metrics_stack(servers: SharedServers) -> Iterator[Metrics]:
    """The traffic app and a Prometheus scraping it, for one test module (in this process: each xdist worker its own)."""
    app = TrafficApp()
    prometheus = PrometheusServer(prometheus_binary(servers), [app.target])
    yield Metrics(app, prometheus)
    prometheus.close()
    app.close()
