"""The CI gate's GitHub adapter against a local GitHub that answers as GitHub does (tests/github_double.py): a ref's
commit statuses and check runs, every page, and each way GitHub refuses (401, 403/429 rate limits, unknown ref,
malformed answer, unreachable) turned into one message saying what to do, never showing the token."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bot.adapters.ci_github import MAX_PAGES, GithubCiStatus, shown_url
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
        reader(token).read(gate(server, **changes), ref, "api")
    assert TOKEN not in raised.value.message
    return raised.value


def test_all_checks_passed_is_green_with_the_count(github: GithubDouble) -> None:
    for name in ("build", "test", "lint"):
        github.add_check("v1.2.3", name)
    github.add_check("v1.2.3", "docs", conclusion="skipped")
    github.set_status("v1.2.3", "ci/jenkins", "success")
    report = reader().read(gate(github), "v1.2.3", "api")
    assert report.state is CiState.GREEN
    assert report.summary == "✅ 5 of 5 checks passed"


def test_a_failed_check_run_is_named_with_its_link(github: GithubDouble) -> None:
    github.add_check("v1.2.3", "build")
    bad = github.add_check("v1.2.3", "integration tests", conclusion="timed_out")
    report = reader().read(gate(github), "v1.2.3", "api")
    assert report.state is CiState.FAILED
    assert (
        report.summary
        == f"❌ check `integration tests` failed (timed_out): <https://github.com/example/api/runs/{bad.id}|details>"
    )


def test_a_failed_commit_status_is_named_with_its_target_url(github: GithubDouble) -> None:
    github.add_check("v1.2.3", "build")
    github.set_status("v1.2.3", "security/scan", "error")
    failed = reader().read(gate(github), "v1.2.3", "api").failed
    assert failed is not None and failed.name == "security/scan" and failed.detail == "error"
    assert failed.link is not None and failed.link.startswith("https://ci.example.com/security/scan/")


def test_pending_counts_what_is_done(github: GithubDouble) -> None:
    github.add_check("v1.2.3", "build")
    github.add_check("v1.2.3", "test", status="in_progress")
    github.add_check("v1.2.3", "deploy-preview", status="queued")
    github.set_status("v1.2.3", "ci/jenkins", "pending")
    github.set_status("v1.2.3", "license", "success")
    report = reader().read(gate(github), "v1.2.3", "api")
    assert report.state is CiState.PENDING
    assert report.summary == "waiting for CI (2 of 5 checks done)"
    github.set_check("v1.2.3", "test", conclusion="success")
    assert reader().read(gate(github), "v1.2.3", "api").summary == "waiting for CI (3 of 5 checks done)"


def test_a_ref_with_no_checks_yet_is_pending_not_green(github: GithubDouble) -> None:
    report = reader().read(gate(github), "main", "api")
    assert report.state is CiState.PENDING and report.summary == "waiting for CI (no checks reported yet)"


def test_a_required_check_not_reported_yet_keeps_it_pending(github: GithubDouble) -> None:
    github.add_check("v1.2.3", "build")
    report = reader().read(gate(github, required_checks=["build", "e2e"]), "v1.2.3", "api")
    assert report.state is CiState.PENDING and "not reported yet: e2e" in report.summary


def test_every_page_of_check_runs_and_statuses_is_read(github: GithubDouble) -> None:
    github.max_per_page = 2
    for i in range(5):
        github.add_check("v1.2.3", f"shard-{i}")
    for i in range(3):
        github.set_status("v1.2.3", f"ctx-{i}", "success")
    github.add_check("v1.2.3", "last-page", conclusion="failure")
    report = reader().read(gate(github), "v1.2.3", "api")
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
    assert error.outcome == "ci_unauthorized"
    assert f"set the environment variable {TOKEN_ENV} (services.api.ci.token_env)" in error.message


def test_an_unknown_ref_is_named(github: GithubDouble) -> None:
    error = refused(github, ref="v9.9.9")
    assert error.outcome == "ci_unknown_ref"
    assert "v9.9.9 is not a ref in example/api" in error.message and "422 No commit found for SHA: v9.9.9" in error.message


def test_an_unknown_repository_is_a_404_naming_it(github: GithubDouble) -> None:
    error = refused(github, repo="example/nope")
    assert error.outcome == "ci_unknown_ref" and "is not a ref in example/nope (GitHub: 404 Not Found)" in error.message


def test_a_spent_rate_limit_says_when_it_resets(github: GithubDouble) -> None:
    github.add_check("v1.2.3", "build")
    reset = time.gmtime(github.exhaust(120))
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


def test_an_html_answer_says_it_is_not_githubs_json_naming_the_status(github: GithubDouble) -> None:
    github.add_check("v1.2.3", "build")
    github.malformed = True
    error = refused(github)
    assert error.outcome == "ci_malformed"
    assert f"the answer at {github.base_url} is not GitHub's REST API JSON (HTTP 200, text/html); check `api_url`" in (
        error.message
    )


def test_github_unreachable_says_so() -> None:
    error = refused(None)
    assert error.outcome == "ci_unreachable" and "could not be reached (ConnectError); try again in a minute" in error.message
    assert error.problem.endswith("could not be reached (ConnectError)")  # what a waiting request's poll line shows


class Recorder:
    """Another host (127.0.0.2): records each request's path and Authorization header, answers an empty page."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.seen.append((self.path, self.headers.get("Authorization")))
                body = b'{"total_count": 0, "check_runs": [], "statuses": []}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.2:{self.server.server_address[1]}"


def test_a_next_page_on_another_host_is_not_followed_and_gets_no_token(github: GithubDouble) -> None:
    elsewhere = Recorder()
    try:
        github.max_per_page = 1
        github.add_check("v1.2.3", "build")
        github.add_check("v1.2.3", "test")
        github.link_base = elsewhere.base_url
        error = refused(github)
        assert error.outcome == "ci_malformed"
        assert f"GitHub's next page points outside api_url ({elsewhere.base_url}/repos/example/api/" in error.message
        assert elsewhere.seen == []
        github.link_base = github.base_url.replace("127.0.0.1", "localhost")  # same machine, another origin
        assert refused(github).message.startswith("GitHub's next page points outside api_url")
        assert elsewhere.seen == []
    finally:
        elsewhere.server.shutdown()
        elsewhere.server.server_close()


def test_more_pages_than_opsbot_reads_is_never_green(github: GithubDouble) -> None:
    github.max_per_page = 1  # one check a page
    for i in range(MAX_PAGES):
        github.add_check("v1.2.3", f"shard-{i}")
    github.add_check("v1.2.3", "after-the-last-page-read", conclusion="failure")
    error = refused(github)
    assert error.outcome == "ci_too_many_checks"
    assert f"v1.2.3 in example/api has more than {MAX_PAGES * 100} commit statuses or check runs" in error.message
    assert len([r for r in github.requests if r.path.endswith("/check-runs")]) == MAX_PAGES


def test_a_failed_check_on_the_pages_read_still_fails_when_more_pages_follow(github: GithubDouble) -> None:
    github.max_per_page = 1
    github.add_check("v1.2.3", "build", conclusion="failure")
    for i in range(MAX_PAGES):
        github.add_check("v1.2.3", f"shard-{i}")
    report = reader().read(gate(github), "v1.2.3", "api")
    assert report.state is CiState.FAILED and report.failed is not None and report.failed.name == "build"


def test_credentials_in_api_url_are_never_shown_and_the_token_header_is_what_is_sent(github: GithubDouble) -> None:
    assert shown_url("https://x-access-token:S3CRET@ghe.example.com:8443/api/v3") == "https://ghe.example.com:8443/api/v3"
    assert shown_url("https://api.github.com") == "https://api.github.com"
    port = closed_port()
    # the config refuses such a URL (tests/unit/test_config.py); this is the adapter's own defence behind it
    leaky = CiGate.model_construct(**{**gate(None).model_dump(), "api_url": f"http://x-access-token:S3CRET@127.0.0.1:{port}"})
    with pytest.raises(CiUnreadable) as raised:
        reader().read(leaky, "v1.2.3", "api")
    assert (
        "S3CRET" not in raised.value.message and f"GitHub (http://127.0.0.1:{port}) could not be reached" in raised.value.message
    )
    github.add_check("v1.2.3", "build")
    at_github = {**leaky.model_dump(), "api_url": github.base_url.replace("//", "//x-access-token:S3CRET@")}
    report = reader().read(CiGate.model_construct(**at_github), "v1.2.3", "api")  # the double wants `Bearer <token>`
    assert report.state is CiState.GREEN
