"""The deploy providers against real things: a local program and a local webhook receiver."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.adapters.deploy_providers.command import CommandDeploy
from bot.adapters.deploy_providers.webhook import WebhookDeploy
from bot.config import CommandProvider, WebhookProvider
from bot.domain.deploys.model import DeployKind, DeployOrder, StopSignal
from tests.deploy_kit import WebhookReceiver

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


# GitHub Actions: tests/integration/test_github_actions.py, against tests/github_double.py.
