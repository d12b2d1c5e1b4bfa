"""The deploy providers against real things: a local program, a local webhook receiver, a local GitHub API."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from bot.adapters.deploy_providers.command import CommandDeploy
from bot.adapters.deploy_providers.github_actions import GithubActionsDeploy
from bot.adapters.deploy_providers.webhook import WebhookDeploy
from bot.config import CommandProvider, GithubActionsProvider, WebhookProvider
from bot.domain.deploys.model import DeployKind, DeployOrder, StopSignal
from tests.deploy_kit import WebhookReceiver, _Server

ORDER = DeployOrder("d-1a2b3c4d", DeployKind.DEPLOY, "api", "production", "v1.2.3", "U0DEV", "release", "v1.2.2")
SECRET = "s3cret-for-tests"


def command(argv: list[str], timeout: int = 10) -> CommandDeploy:
    return CommandDeploy(CommandProvider(type="command", argv=argv, timeout_seconds=timeout), environ=dict(os.environ))


# ----- command -----


def test_command_substitutes_placeholders_per_argument_and_never_uses_a_shell() -> None:
    program = "import sys, json; print(json.dumps(sys.argv[1:]))"
    result = command([sys.executable, "-c", program, "{service}", "--to={environment}", "{version}; rm -rf / $(id)"]).deploy(
        ORDER, StopSignal()
    )
    assert result.ok and result.summary.endswith("exited with status 0")
    assert json.loads(result.output_tail) == ["api", "--to=production", "v1.2.3; rm -rf / $(id)"]


def test_command_exiting_non_zero_fails_with_its_status_and_output_tail() -> None:
    program = "import sys\nfor i in range(50): print('line', i)\nsys.exit(4)"
    result = command([sys.executable, "-c", program]).deploy(ORDER, StopSignal())
    assert not result.ok and "exited with status 4" in result.summary
    lines = result.output_tail.splitlines()
    assert lines[0] == "line 30" and lines[-1] == "line 49"  # only the tail is kept


def test_command_timeout_stops_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    program = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "print('started', flush=True)\ntime.sleep(60)"
    )
    result = command([sys.executable, "-c", program], timeout=1).deploy(ORDER, StopSignal())
    assert not result.ok and "timed out after 1s and was stopped" in result.summary and "started" in result.output_tail
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_command_that_cannot_start_says_why() -> None:
    result = command(["/nonexistent/deploy.sh", "{version}"]).deploy(ORDER, StopSignal())
    assert not result.ok and result.summary == "could not start `/nonexistent/deploy.sh`: No such file or directory"


def test_command_describes_what_it_would_run() -> None:
    text = command(["./deploy.sh", "{service}", "{environment}", "{version}"], timeout=600).describe(ORDER)
    assert text == "runs `./deploy.sh api production v1.2.3` (timeout 10m)"


# ----- webhook -----


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[WebhookReceiver]:
    server = WebhookReceiver(SECRET, tmp_path)
    server.start()
    yield server
    server.stop()


def webhook(url: str, retries: int = 2, environ: dict[str, str] | None = None) -> WebhookDeploy:
    spec = WebhookProvider(
        type="webhook", url=url, secret_env="HOOK_SECRET", retries=retries, backoff_seconds=0.01, timeout_seconds=2
    )
    return WebhookDeploy(spec, environ if environ is not None else {"HOOK_SECRET": SECRET})


def test_webhook_posts_signed_json_with_an_idempotency_key(receiver: WebhookReceiver) -> None:
    result = webhook(receiver.base_url + "/deploy").deploy(ORDER, StopSignal())
    assert result.ok and result.summary == "webhook answered HTTP 200"
    assert receiver.bad_signatures == 0 and len(receiver.attempts) == 1
    attempt = receiver.attempts[0]
    assert attempt["headers"]["idempotency-key"] == "d-1a2b3c4d"
    assert attempt["body"] == {
        "deploy_id": "d-1a2b3c4d",
        "kind": "deploy",
        "service": "api",
        "environment": "production",
        "version": "v1.2.3",
        "previous_version": "v1.2.2",
        "requester": "U0DEV",
        "reason": "release",
    }


def test_webhook_signed_with_the_wrong_secret_is_refused_by_the_receiver(receiver: WebhookReceiver) -> None:
    result = webhook(receiver.base_url, environ={"HOOK_SECRET": "wrong"}).deploy(ORDER, StopSignal())
    assert not result.ok and "HTTP 401" in result.summary and receiver.bad_signatures == 1 and receiver.done == {}


def test_webhook_retries_5xx_with_backoff_then_succeeds(receiver: WebhookReceiver) -> None:
    receiver.script = [("before", 500), ("before", 503)]
    result = webhook(receiver.base_url).deploy(ORDER, StopSignal())
    assert result.ok and len(receiver.attempts) == 3 and len(receiver.done) == 1


def test_a_retry_after_a_lost_response_never_deploys_twice(receiver: WebhookReceiver) -> None:
    receiver.script = [("after", 502)]  # the receiver deployed, then the answer was an error
    result = webhook(receiver.base_url).deploy(ORDER, StopSignal())
    assert result.ok and len(receiver.attempts) == 2 and len(receiver.done) == 1
    keys = {a["headers"]["idempotency-key"] for a in receiver.attempts}
    assert keys == {"d-1a2b3c4d"}


def test_webhook_gives_up_after_its_retries(receiver: WebhookReceiver) -> None:
    receiver.script = [("before", 500)] * 5
    result = webhook(receiver.base_url, retries=2).deploy(ORDER, StopSignal())
    assert not result.ok and result.summary == "webhook answered HTTP 500 after 3 attempts" and receiver.done == {}


def test_webhook_4xx_is_not_retried(receiver: WebhookReceiver) -> None:
    receiver.script = [("before", 422)]
    result = webhook(receiver.base_url).deploy(ORDER, StopSignal())
    assert not result.ok and "refused the deploy: HTTP 422" in result.summary and len(receiver.attempts) == 1


def test_webhook_connection_refused_is_retried_then_fails() -> None:
    result = webhook("http://127.0.0.1:1/deploy", retries=1).deploy(ORDER, StopSignal())
    assert not result.ok and result.summary == "webhook connection failed (ConnectError) after 2 attempts"


def test_webhook_without_its_secret_does_not_send_anything(receiver: WebhookReceiver) -> None:
    result = webhook(receiver.base_url, environ={}).deploy(ORDER, StopSignal())
    assert not result.ok and "set the environment variable HOOK_SECRET" in result.summary and receiver.attempts == []


# ----- GitHub Actions -----


class FakeGithub(_Server):
    """The GitHub REST endpoints the provider uses, with runs that finish after a few polls."""

    def __init__(self, *, details: bool = True, conclusion: str = "success", polls: int = 2, dispatch_status: int = 0) -> None:
        self.details, self.conclusion, self.polls, self.dispatch_status = details, conclusion, polls, dispatch_status
        self.dispatches: list[dict[str, Any]] = []
        self.auth: set[str] = set()
        self.run_created: str | None = None
        self.seen_polls = 0

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        self.auth.add({k.lower(): v for k, v in headers.items()}.get("authorization", ""))
        route = urlsplit(path).path
        if method == "POST" and route == "/repos/example/api/actions/workflows/deploy.yml/dispatches":
            if self.dispatch_status:
                return self.dispatch_status, {"message": "Workflow does not have 'workflow_dispatch' trigger"}
            self.dispatches.append(json.loads(body))
            self.run_created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            if self.details and json.loads(body).get("return_run_details"):
                return 200, {
                    "workflow_run_id": 4242,
                    "run_url": f"{self.base_url}/repos/example/api/actions/runs/4242",
                    "html_url": "https://github.com/example/api/actions/runs/4242",
                }
            return 204, {}
        if route == "/repos/example/api/actions/workflows/deploy.yml/runs":
            runs = [{"id": 4242, "created_at": self.run_created}] if self.run_created else []
            return 200, {"total_count": len(runs), "workflow_runs": runs}
        if route == "/repos/example/api/actions/runs/4242":
            self.seen_polls += 1
            done = self.seen_polls > self.polls
            return 200, {
                "id": 4242,
                "run_number": 17,
                "status": "completed" if done else "in_progress",
                "conclusion": self.conclusion if done else None,
                "html_url": "https://github.com/example/api/actions/runs/4242",
            }
        return 404, {"message": "Not Found"}


def github(server: FakeGithub, token: str | None = "ghp_test", timeout: int = 10) -> GithubActionsDeploy:
    spec = GithubActionsProvider(
        type="github_actions",
        repo="example/api",
        workflow="deploy.yml",
        ref="main",
        api_url=server.base_url,
        inputs={"version": "{version}", "environment": "{environment}"},
        poll_seconds=0.01,
        timeout_seconds=timeout,
    )
    return GithubActionsDeploy(spec, {"GITHUB_TOKEN": token} if token else {})


@pytest.fixture
def fake_github() -> Iterator[FakeGithub]:
    server = FakeGithub()
    server.start()
    yield server
    server.stop()


def test_github_dispatches_the_workflow_with_inputs_and_follows_the_run_to_success(fake_github: FakeGithub) -> None:
    result = github(fake_github).deploy(ORDER, StopSignal())
    assert result.ok and result.summary == "workflow run #17 completed: success"
    assert result.link == "https://github.com/example/api/actions/runs/4242"
    assert fake_github.dispatches == [
        {"ref": "main", "inputs": {"version": "v1.2.3", "environment": "production"}, "return_run_details": True}
    ]
    assert fake_github.auth == {"Bearer ghp_test"} and fake_github.seen_polls == 3


def test_github_run_that_concludes_failure_fails_the_deploy(fake_github: FakeGithub) -> None:
    fake_github.conclusion = "failure"
    result = github(fake_github).deploy(ORDER, StopSignal())
    assert not result.ok and result.summary == "workflow run #17 completed: failure"


def test_github_without_run_details_finds_the_run_it_started(fake_github: FakeGithub) -> None:
    fake_github.details = False
    result = github(fake_github).deploy(ORDER, StopSignal())
    assert result.ok and fake_github.seen_polls == 3


def test_github_refusing_the_dispatch_says_why(fake_github: FakeGithub) -> None:
    fake_github.dispatch_status = 422
    result = github(fake_github).deploy(ORDER, StopSignal())
    assert not result.ok and "HTTP 422: Workflow does not have 'workflow_dispatch' trigger" in result.summary


def test_github_run_still_going_at_the_timeout_fails(fake_github: FakeGithub) -> None:
    fake_github.polls = 10_000
    result = github(fake_github, timeout=1).deploy(ORDER, StopSignal())
    assert not result.ok and "still in_progress after 1s" in result.summary


def test_github_without_a_token_sends_nothing(fake_github: FakeGithub) -> None:
    result = github(fake_github, token=None).deploy(ORDER, StopSignal())
    assert not result.ok and "GITHUB_TOKEN" in result.summary and fake_github.dispatches == []
