"""The HTTP probe against real local servers: every fault becomes a failed check with a clear reason."""

from __future__ import annotations

import ssl
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from bot.adapters import health_fetcher
from bot.adapters.http_health import HttpHealthProbe
from bot.domain.health.model import CheckOutcome, HealthReport
from bot.domain.shared.errors import NotFound
from tests.health_stubs import (
    closed_port,
    hang,
    huge,
    json_reply,
    raw_server,
    redirect,
    reset,
    self_signed_tls,
    serving,
    silent_listener,
    text_reply,
    trickle,
)
from tests.support import make_config

HEALTHY = json_reply({"status": "healthy"})


def probe(
    checks: list[dict[str, Any]], environ: dict[str, str] | None = None, version_url: str | None = None, **settings: Any
) -> HealthReport:
    env: dict[str, Any] = {"health": checks}
    if version_url:
        env["version_url"] = version_url
    config = make_config(services={"api": {"environments": {"production": env}}}, health=settings)
    return HttpHealthProbe(config, environ or {}).check("api", "production")


def only(report: HealthReport) -> CheckOutcome:
    [check] = report.checks
    return check


def test_a_healthy_endpoint_reports_its_latency_and_the_version() -> None:
    with serving({"/health": HEALTHY, "/version": json_reply({"version": "1.4.2"})}) as server:
        # warn_ms well above any loopback answer: a busy machine (load 9) once took over the 500 ms default
        check = {"url": server.url(), "expect_json": {"status": "healthy"}, "warn_ms": 5000, "critical_ms": 10000}
        report = probe([check], version_url=server.url("/version"))
    assert (report.status, report.version, report.version_error) == ("healthy", "1.4.2", None)
    assert only(report).latency_ms is not None and only(report).reason is None


def test_connection_refused() -> None:
    report = probe([{"url": f"http://127.0.0.1:{closed_port()}/health"}])
    assert (report.status, only(report).reason) == ("failed", "connection refused")


def test_dns_failure_names_the_host() -> None:
    assert (
        only(probe([{"url": "http://health.nowhere.invalid/health"}])).reason
        == "DNS failure: cannot resolve health.nowhere.invalid"
    )


def test_plain_http_on_an_https_url_is_a_tls_error() -> None:
    with serving({"/health": HEALTHY}) as server:
        reason = only(probe([{"url": server.url(scheme="https")}])).reason
    assert reason is not None and reason.startswith("TLS error:") and "plain HTTP" in reason


def test_a_self_signed_certificate_is_a_tls_error(tmp_path: Path) -> None:
    with serving({"/health": HEALTHY}, tls=self_signed_tls(tmp_path)) as server:
        reason = only(probe([{"url": server.url()}])).reason
    assert reason == "TLS error: certificate not trusted (self-signed certificate)"


def test_a_certificate_trusted_by_the_given_tls_context_is_healthy(tmp_path: Path) -> None:
    with serving({"/health": HEALTHY}, tls=self_signed_tls(tmp_path)) as server:
        trusting = ssl.create_default_context(cafile=tmp_path / "cert.pem")
        config = make_config(services={"api": {"environments": {"production": {"health": [{"url": server.url()}]}}}})
        report = HttpHealthProbe(config, {}, verify=trusting).check("api", "production")
    assert (report.status, only(report).reason) == ("healthy", None)


def test_a_tls_port_that_never_answers_times_out_in_the_handshake() -> None:
    with silent_listener() as port:
        assert (
            only(probe([{"url": f"https://127.0.0.1:{port}/health", "timeout_ms": 800}])).reason
            == "timeout after 800 ms in the TLS handshake"
        )


def test_an_answer_that_is_not_http_is_a_bad_http_answer() -> None:
    with raw_server(lambda conn: conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")) as port:
        reason = only(probe([{"url": f"http://127.0.0.1:{port}/health"}])).reason
    assert reason is not None and reason.startswith("bad HTTP answer: ")


def test_a_server_that_closes_without_answering_is_a_bad_http_answer() -> None:
    with raw_server(lambda conn: None) as port:
        reason = only(probe([{"url": f"http://127.0.0.1:{port}/health"}])).reason
    assert reason == "bad HTTP answer: Server disconnected without sending a response."


def test_a_reset_connection() -> None:
    with raw_server(reset) as port:
        assert only(probe([{"url": f"http://127.0.0.1:{port}/health"}])).reason == "connection reset by the server"


def test_an_invalid_url_is_named() -> None:
    reason = only(probe([{"url": "http://[::1/health"}])).reason
    assert reason is not None and reason.startswith("invalid URL: ")


def test_a_proxy_named_in_the_environment_carries_the_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    with serving({"http://api.internal.invalid/health": HEALTHY}) as proxy:  # a proxy sees the whole URL
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        report = probe([{"url": "http://api.internal.invalid/health"}])
    assert (report.status, only(report).reason) == ("healthy", None)


def test_the_probe_names_itself_in_the_user_agent() -> None:
    with serving({"/health": HEALTHY}) as server:
        probe([{"url": server.url()}])
        sent = server.headers_seen[0]
    assert sent["User-Agent"] == "opsbot-health/1"


def test_a_non_json_body_where_json_is_expected() -> None:
    with serving({"/health": text_reply("<html><h1>Welcome to nginx!</h1></html>")}) as server:
        check = only(probe([{"url": server.url(), "expect_json": {"status": "healthy"}}]))
    assert (check.status, check.reason) == ("failed", "body is not JSON (text/html: <html><h1>Welcome to nginx!</h1></html>)")


def test_a_50_mb_body_is_cut_at_the_read_cap() -> None:
    with serving({"/health": huge(50 * 1024 * 1024)}) as server:
        check = only(probe([{"url": server.url(), "expect_json": {"status": "healthy"}, "timeout_ms": 10_000}], max_body_kb=256))
    assert (check.status, check.reason) == ("failed", "body larger than 256 KB; stopped reading")


def test_a_redirect_loop_stops_at_the_redirect_limit() -> None:
    with serving({"/a": redirect("/b"), "/b": redirect("/a")}) as server:
        check = only(probe([{"url": server.url("/a")}], max_redirects=3))
        hits = server.hits["/a"] + server.hits["/b"]
    assert check.reason == "redirect loop: more than 3 redirects"
    assert hits == 4


def test_a_server_that_accepts_and_never_answers_times_out() -> None:
    with serving({"/health": hang}) as server:
        check = only(probe([{"url": server.url(), "timeout_ms": 800}]))
    assert (check.status, check.reason) == ("failed", "timeout after 800 ms waiting for a response")


def test_a_listener_that_never_reads_times_out_too() -> None:
    with silent_listener() as port:
        assert (
            only(probe([{"url": f"http://127.0.0.1:{port}/health", "timeout_ms": 800}])).reason
            == "timeout after 800 ms waiting for a response"
        )


def test_a_body_trickling_one_byte_a_second_hits_the_whole_request_deadline() -> None:
    # httpx's read timeout restarts with every byte; only a deadline over the whole request catches this.
    with serving({"/health": trickle(b'{"status": "healthy"}', every=1.0)}) as server:
        check = only(probe([{"url": server.url(), "timeout_ms": 1500}]))
    assert check.status == "failed"
    assert check.reason is not None and check.reason.startswith("timeout after 1500 ms reading the body (")


def test_one_broken_check_does_not_spoil_the_others() -> None:
    with serving({"/health": HEALTHY, "/hang": hang, "/503": json_reply({"status": "down"}, status=503)}) as server:
        report = probe([{"url": server.url()}, {"url": server.url("/hang"), "timeout_ms": 300}, {"url": server.url("/503")}])
    assert [(c.name, c.status) for c in report.checks] == [("/health", "healthy"), ("/hang", "failed"), ("/503", "failed")]
    assert report.checks[2].reason == "status 503 (expected 200)"
    assert report.status == "failed"


def most_waiting_at_once(concurrency: int) -> int:
    """How many of 12 checks (each answered after 0.6 s) were waiting for their answer at once. A check waits from its
    arrival until its answer starts: the next may start only once an answer came, so, unlike the stub's own count
    (which ends when its handler returns, after the client may already have the answer), this cannot exceed the cap."""
    spans: list[tuple[float, float]] = []
    guard = threading.Lock()

    def slow(handler: Any, stopping: threading.Event) -> None:
        arrived = time.monotonic()
        stopping.wait(0.6)
        with guard:
            spans.append((arrived, time.monotonic()))
        json_reply({})(handler, stopping)

    with serving({f"/s{i}": slow for i in range(12)}) as server:
        probe([{"url": server.url(f"/s{i}")} for i in range(12)], concurrency=concurrency)
    assert len(spans) == 12
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans], key=lambda e: (e[0], e[1]))
    waiting = most = 0
    for _, step in events:
        waiting += step
        most = max(most, waiting)
    return most


def test_checks_run_concurrently_up_to_the_cap() -> None:
    assert most_waiting_at_once(concurrency=4) == 4
    assert most_waiting_at_once(concurrency=50) == 12


def test_headers_from_environment_variables_are_sent_and_never_reported() -> None:
    with serving({"/health": HEALTHY}) as server:
        report = probe(
            [{"url": server.url(), "headers_from_env": {"Authorization": "API_HEALTH_TOKEN"}, "headers": {"X-Probe": "opsbot"}}],
            environ={"API_HEALTH_TOKEN": "Bearer s3cret"},
        )
        sent = server.headers_seen[0]
    assert sent["Authorization"] == "Bearer s3cret" and sent["X-Probe"] == "opsbot"
    assert report.status == "healthy" and "s3cret" not in repr(report)


def test_a_missing_header_variable_fails_the_check_without_calling() -> None:
    with serving({"/health": HEALTHY}) as server:
        check = only(probe([{"url": server.url(), "headers_from_env": {"Authorization": "API_HEALTH_TOKEN"}}]))
        assert server.hits == {}
    assert check.reason == "header Authorization: environment variable API_HEALTH_TOKEN is not set"


def test_a_broken_version_endpoint_is_reported_beside_healthy_checks() -> None:
    with serving({"/health": HEALTHY, "/version": text_reply("<html>nope</html>", status=404)}) as server:
        report = probe([{"url": server.url()}], version_url=server.url("/version"))
    assert (report.status, report.version, report.version_error) == ("healthy", None, "version endpoint: status 404")


def test_many_services_are_checked_in_one_fan_out() -> None:
    with serving({"/health": HEALTHY}) as server:
        services = {f"svc{i}": {"environments": {"production": {"health": [{"url": server.url()}]}}} for i in range(5)}
        config = make_config(services=services, default_service=None)
        reports = HttpHealthProbe(config, {}).check_many([(f"svc{i}", "production") for i in range(5)])
    assert [(r.service, r.status) for r in reports] == [(f"svc{i}", "healthy") for i in range(5)]


def test_an_unknown_service_is_not_found() -> None:
    with pytest.raises(NotFound):
        HttpHealthProbe(make_config(), {}).check("nope", "production")


def test_the_cap_is_lowered_where_the_process_may_open_few_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health_fetcher.resource, "getrlimit", lambda which: (1024, 4096))
    assert (health_fetcher.sockets_allowed(1000), health_fetcher.sockets_allowed(200)) == (768, 200)
