"""The CI gate's GitHub adapter against a local GitHub that answers as GitHub does (tests/github_double.py): a ref's
commit statuses and check runs, every page, and each way GitHub refuses (401, 403/429 rate limits, unknown ref,
malformed answer, unreachable) turned into one message saying what to do, never showing the token."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from bot.adapters.ci_github import GithubCiStatus
from bot.config import CiGate
from bot.domain.deploys.ci import CiState, CiUnreadable
from tests.github_double import GithubDouble
from tests.health_stubs import closed_port

TOKEN = "ghp_s3cr3tCiT0ken"
TOKEN_ENV = "OPSBOT_TEST_CI_TOKEN"


@pytest.fixture
def github() -> Iterator[GithubDouble]:
    server = GithubDouble(token=TOKEN, refs=("main",)).start()
    yield server
    server.stop()


def gate(server: GithubDouble | None, **changes: Any) -> CiGate:
    url = server.base_url if server is not None else f"http://127.0.0.1:{closed_port()}"
    return CiGate(**{"repo": "example/api", "token_env": TOKEN_ENV, "api_url": url, "request_timeout_seconds": 2, **changes})


def reader(token: str = TOKEN) -> GithubCiStatus:
    return GithubCiStatus({TOKEN_ENV: token})


def refused(server: GithubDouble | None, ref: str = "v1.2.3", token: str = TOKEN, **changes: Any) -> CiUnreadable:
    with pytest.raises(CiUnreadable) as raised:
        reader(token).read(gate(server, **changes), ref)
    assert TOKEN not in raised.value.message
    return raised.value


def test_all_checks_passed_is_green_with_the_count(github: GithubDouble) -> None:
    for name in ("build", "test", "lint"):
        github.add_check("v1.2.3", name)
    github.add_check("v1.2.3", "docs", conclusion="skipped")
    github.set_status("v1.2.3", "ci/jenkins", "success")
    report = reader().read(gate(github), "v1.2.3")
    assert report.state is CiState.GREEN
    assert report.summary == "✅ 5 of 5 checks passed"


def test_a_failed_check_run_is_named_with_its_link(github: GithubDouble) -> None:
    github.add_check("v1.2.3", "build")
    bad = github.add_check("v1.2.3", "integration tests", conclusion="timed_out")
    report = reader().read(gate(github), "v1.2.3")
    assert report.state is CiState.FAILED
    assert (
        report.summary
        == f"❌ check `integration tests` failed (timed_out): <https://github.com/example/api/runs/{bad.id}|details>"
    )


def test_a_failed_commit_status_is_named_with_its_target_url(github: GithubDouble) -> None:
    github.add_check("v1.2.3", "build")
    github.set_status("v1.2.3", "security/scan", "error")
    failed = reader().read(gate(github), "v1.2.3").failed
    assert failed is not None and failed.name == "security/scan" and failed.detail == "error"
    assert failed.link is not None and failed.link.startswith("https://ci.example.com/security/scan/")


def test_pending_counts_what_is_done(github: GithubDouble) -> None:
    github.add_check("v1.2.3", "build")
    github.add_check("v1.2.3", "test", status="in_progress")
    github.add_check("v1.2.3", "deploy-preview", status="queued")
    github.set_status("v1.2.3", "ci/jenkins", "pending")
    github.set_status("v1.2.3", "license", "success")
    report = reader().read(gate(github), "v1.2.3")
    assert report.state is CiState.PENDING
    assert report.summary == "waiting for CI (2 of 5 checks done)"
    github.set_check("v1.2.3", "test", conclusion="success")
    assert reader().read(gate(github), "v1.2.3").summary == "waiting for CI (3 of 5 checks done)"


def test_a_ref_with_no_checks_yet_is_pending_not_green(github: GithubDouble) -> None:
    report = reader().read(gate(github), "main")
    assert report.state is CiState.PENDING and report.summary == "waiting for CI (no checks reported yet)"


def test_a_required_check_not_reported_yet_keeps_it_pending(github: GithubDouble) -> None:
    github.add_check("v1.2.3", "build")
    report = reader().read(gate(github, required_checks=["build", "e2e"]), "v1.2.3")
    assert report.state is CiState.PENDING and "not reported yet: e2e" in report.summary


def test_every_page_of_check_runs_and_statuses_is_read(github: GithubDouble) -> None:
    github.max_per_page = 2
    for i in range(5):
        github.add_check("v1.2.3", f"shard-{i}")
    for i in range(3):
        github.set_status("v1.2.3", f"ctx-{i}", "success")
    github.add_check("v1.2.3", "last-page", conclusion="failure")
    report = reader().read(gate(github), "v1.2.3")
    assert report.total == 9
    assert report.failed is not None and report.failed.name == "last-page"  # on the third page of check runs
    pages = [r for r in github.requests if r.path.endswith("/check-runs")]
    assert [r.query.get("page", "1") for r in pages] == ["1", "2", "3"]


def test_a_bad_token_says_to_check_the_token_variable(github: GithubDouble) -> None:
    error = refused(github, token="ghp_wrong")
    assert error.outcome == "ci_unauthorized"
    assert "401 Bad credentials" in error.message and f"check {TOKEN_ENV}" in error.message


def test_no_token_at_all_names_the_variable(github: GithubDouble) -> None:
    error = refused(github, token="")
    assert error.outcome == "ci_unauthorized" and f"set the environment variable {TOKEN_ENV}" in error.message


def test_an_unknown_ref_is_named(github: GithubDouble) -> None:
    error = refused(github, ref="v9.9.9")
    assert error.outcome == "ci_unknown_ref"
    assert "v9.9.9 is not a ref in example/api" in error.message and "422 No commit found for SHA: v9.9.9" in error.message


def test_an_unknown_repository_is_a_404_naming_it(github: GithubDouble) -> None:
    error = refused(github, repo="example/nope")
    assert error.outcome == "ci_unknown_ref" and "is not a ref in example/nope (GitHub: 404 Not Found)" in error.message


def test_a_spent_rate_limit_says_when_it_resets(github: GithubDouble) -> None:
    github.add_check("v1.2.3", "build")
    github.exhaust(120)
    reset = time.gmtime(time.time() + 120)
    error = refused(github)
    assert error.outcome == "ci_rate_limited"
    assert f"is spent until {reset.tm_hour:02d}:{reset.tm_min:02d}" in error.message and "try again then" in error.message


@pytest.mark.parametrize("status", [403, 429])
def test_a_secondary_limit_with_retry_after_says_how_long(github: GithubDouble, status: int) -> None:
    github.add_check("v1.2.3", "build")
    github.secondary(1, retry_after=42, status=status)
    error = refused(github)
    assert error.outcome == "ci_rate_limited" and f"rate limiting opsbot ({status}): try again in 42 s" in error.message


def test_a_token_without_permission_says_what_it_needs(github: GithubDouble) -> None:
    github.forbidden = True
    error = refused(github)
    assert error.outcome == "ci_forbidden" and "read access to commit statuses and checks" in error.message


def test_an_answer_that_is_not_json_is_malformed(github: GithubDouble) -> None:
    github.add_check("v1.2.3", "build")
    github.malformed = True
    error = refused(github)
    assert error.outcome == "ci_malformed" and "check `api_url`" in error.message


def test_github_unreachable_says_so() -> None:
    error = refused(None)
    assert error.outcome == "ci_unreachable" and "could not be reached (ConnectError)" in error.message
