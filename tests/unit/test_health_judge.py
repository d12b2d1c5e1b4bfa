"""Judging one check by the runbook's rules: status codes, JSON expectations, latency thresholds."""

from __future__ import annotations

import json

from bot.config import HealthCheck
from bot.domain.health.judge import Observation, judge, overall, version_of

CHECK = HealthCheck(url="https://api.example.com/health/db", expect_json={"database": "connected"}, warn_ms=500, critical_ms=2000)


def answer(body: object, status: int = 200, latency: float = 40.0, content_type: str = "application/json") -> Observation:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Observation(latency_ms=latency, status_code=status, body=raw, content_type=content_type)


def test_expected_body_fast_enough_is_healthy_and_named_after_the_path() -> None:
    outcome = judge(CHECK, answer({"database": "connected"}))
    assert (outcome.name, outcome.status, outcome.reason, outcome.latency_ms) == ("/health/db", "healthy", None, 40.0)


def test_an_unexpected_status_code_fails_and_says_which_was_expected() -> None:
    outcome = judge(CHECK, answer({"database": "connected"}, status=503))
    assert (outcome.status, outcome.reason) == ("failed", "status 503 (expected 200)")


def test_a_body_value_other_than_expected_fails_with_both_values() -> None:
    outcome = judge(CHECK, answer({"database": "disconnected"}))
    assert (outcome.status, outcome.reason) == ("failed", "body database=disconnected (expected connected)")


def test_a_missing_body_key_fails() -> None:
    assert judge(CHECK, answer({"status": "healthy"})).reason == "body has no `database`"


def test_dotted_keys_reach_into_nested_objects() -> None:
    check = HealthCheck(url="https://x.example.com/health", expect_json={"checks.db.ok": True, "version": "2"})
    assert judge(check, answer({"checks": {"db": {"ok": True}}, "version": 2})).status == "healthy"
    assert (
        judge(check, answer({"checks": {"db": {"ok": "true"}}, "version": 2})).reason == "body checks.db.ok=true (expected true)"
    )


def test_a_non_json_body_where_json_is_expected_fails_with_its_type_and_start() -> None:
    outcome = judge(CHECK, answer(b"<html><body>502 Bad Gateway</body></html>", content_type="text/html"))
    assert outcome.status == "failed"
    assert outcome.reason == "body is not JSON (text/html: <html><body>502 Bad Gateway</body></html…)"


def test_a_json_list_or_empty_body_is_not_the_object_expected() -> None:
    assert judge(CHECK, answer([1, 2])).reason == "JSON body is a list, expected an object"
    assert judge(CHECK, answer(b"")).reason == "empty body where JSON was expected"


def test_latency_over_warning_is_degraded_and_over_critical_is_failed() -> None:
    slow = judge(CHECK, answer({"database": "connected"}, latency=750.4))
    too_slow = judge(CHECK, answer({"database": "connected"}, latency=2100))
    assert (slow.status, slow.reason) == ("degraded", "slow: 750 ms (warning at 500 ms)")
    assert (too_slow.status, too_slow.reason) == ("failed", "too slow: 2100 ms (critical at 2000 ms)")


def test_a_body_over_the_read_cap_fails_even_without_expectations() -> None:
    check = HealthCheck(url="https://x.example.com/health")
    seen = Observation(latency_ms=30, status_code=200, body=b" " * 10, truncated_at=1024 * 1024)
    assert judge(check, seen).reason == "body larger than 1 MB; stopped reading"


def test_a_transport_failure_is_reported_as_is() -> None:
    outcome = judge(CHECK, Observation(latency_ms=3.0, error="connection refused"))
    assert (outcome.status, outcome.reason) == ("failed", "connection refused")


def test_overall_is_the_worst_check() -> None:
    assert overall(["healthy", "degraded", "healthy"]) == "degraded"
    assert overall(["degraded", "failed"]) == "failed"
    assert overall([]) == "healthy"


def test_version_comes_from_the_configured_key_or_a_plain_text_body() -> None:
    assert version_of(b'{"build": {"version": "1.4.2"}}', "application/json", "build.version") == ("1.4.2", None)
    assert version_of(b"v2.0.1\n", "text/plain", "version") == ("v2.0.1", None)
    assert version_of(b'{"name": "api"}', "application/json", "version") == (None, "body has no `version`")
    assert version_of(b"<html>oops</html>", "text/html", "version")[0] is None
