"""The provider doubles record each run with its start and end time: the program and the webhook receiver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy_kit import PROGRAM, WebhookReceiver, overlapping, provider_runs

SECRET = "hook-secret"


def start_program(state_dir: Path, *args: str, version: str = "v1.2.3") -> subprocess.Popen[bytes]:
    """The program as opsbot's `command` provider starts it: argv, its own session, DEPLOY_DEPLOY_ID set."""
    env = {**os.environ, "DEPLOY_DEPLOY_ID": "d-42"}
    env.pop("SLACK_BOT_TOKEN", None)
    return subprocess.Popen(
        [sys.executable, str(PROGRAM), str(state_dir), "api", "staging", version, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )


def running(process: subprocess.Popen[bytes]) -> None:
    """Wait for the program's first line: by then its run is recorded and its SIGTERM handler installed."""
    assert process.stdout is not None
    assert process.stdout.readline().startswith(b"deploying ")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def wait_until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_a_run_records_its_start_and_end_and_prints_as_before(tmp_path: Path) -> None:
    before = time.time()
    process = start_program(tmp_path)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0
    assert out == b"deploying api v1.2.3 to staging (d-42)\nslack token visible: False\nrollout complete\n" and err == b""
    assert (tmp_path / "deploys.log").read_text() == "api staging v1.2.3 d-42\n"
    [run] = provider_runs(tmp_path)
    assert (run.provider, run.deploy_id, run.service, run.environment, run.version, run.pid, run.exit) == (
        "command", "d-42", "api", "staging", "v1.2.3", process.pid, 0
    )  # fmt: skip
    assert run.ended is not None and before <= run.started <= run.ended <= time.time()
    lines = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert [line["ended"] is None for line in lines] == [True, False]


def test_a_failing_run_prints_its_error_as_before_and_records_its_exit(tmp_path: Path) -> None:
    process = start_program(tmp_path, "--exit", "3")
    out, err = process.communicate(timeout=20)
    assert process.returncode == 3 and err == b"error: rollout of v1.2.3 failed\n"
    assert out == b"deploying api v1.2.3 to staging (d-42)\nslack token visible: False\n"
    assert provider_runs(tmp_path)[0].exit == 3


def test_a_sigkilled_run_leaves_a_start_without_an_end(tmp_path: Path) -> None:
    process = start_program(tmp_path, "--sleep", "30")
    wait_until(lambda: provider_runs(tmp_path))
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    [run] = provider_runs(tmp_path)
    assert run.ended is None and run.exit is None and run.pid == process.pid


def test_a_sigtermed_run_records_its_end_and_still_dies_of_the_signal(tmp_path: Path) -> None:
    process = start_program(tmp_path, "--sleep", "30")
    running(process)
    os.killpg(process.pid, signal.SIGTERM)
    assert process.wait(timeout=10) == -signal.SIGTERM
    [run] = provider_runs(tmp_path)
    assert run.ended is not None and run.exit == -signal.SIGTERM
    assert not (tmp_path / "deploys.log").exists()


def test_a_run_whose_output_reader_is_gone_dies_at_its_next_line_and_records_its_end(tmp_path: Path) -> None:
    """As when the worker that started it is killed: the pipe it prints to has no reader any more."""
    process = start_program(tmp_path, "--sleep", "0.5")
    running(process)
    assert process.stdout is not None
    assert process.stdout.readline() == b"slack token visible: False\n"  # its last line before the sleep
    process.stdout.close()
    assert process.wait(timeout=10) != 0
    [run] = provider_runs(tmp_path)
    assert run.ended is not None and (run.exit, run.error) == (1, "BrokenPipeError")
    assert (tmp_path / "api-staging.version").read_text() == "v1.2.3"  # it got as far as "rollout complete"
    assert process.stderr is not None
    process.stderr.close()


def test_ignore_term_keeps_running_after_sigterm_until_sigkill(tmp_path: Path) -> None:
    process = start_program(tmp_path, "--sleep", "30", "--ignore-term")
    running(process)
    os.killpg(process.pid, signal.SIGTERM)
    with pytest.raises(subprocess.TimeoutExpired):
        process.wait(timeout=1)
    os.killpg(process.pid, signal.SIGKILL)
    out, _ = process.communicate(timeout=10)
    assert process.returncode == -signal.SIGKILL and b"ignoring SIGTERM\n" in out
    assert provider_runs(tmp_path)[0].ended is None


def test_spawn_child_leaves_a_grandchild_in_the_process_group_that_outlives_the_program(tmp_path: Path) -> None:
    process = start_program(tmp_path, "--spawn-child", "30")
    out, _ = process.communicate(timeout=20)
    assert process.returncode == 0 and out.endswith(b"rollout complete\n")
    [child] = [int(pid) for pid in (tmp_path / "children.txt").read_text().split()]
    try:
        assert alive(child) and os.getpgid(child) == process.pid  # the program led the group
    finally:
        os.killpg(process.pid, signal.SIGKILL)
    wait_until(lambda: not alive(child))


def test_terminating_the_process_group_reaches_the_grandchild_even_when_the_program_ignores_it(tmp_path: Path) -> None:
    process = start_program(tmp_path, "--sleep", "30", "--ignore-term", "--spawn-child", "30")
    wait_until(lambda: (tmp_path / "children.txt").exists())
    [child] = [int(pid) for pid in (tmp_path / "children.txt").read_text().split()]
    os.killpg(process.pid, signal.SIGTERM)
    wait_until(lambda: not alive(child))
    assert process.poll() is None
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def test_two_programs_deploying_one_target_at_once_overlap(tmp_path: Path) -> None:
    first = start_program(tmp_path, "--sleep", "1")
    wait_until(lambda: provider_runs(tmp_path))
    second = start_program(tmp_path, "--sleep", "0", version="v1.2.4")
    second.communicate(timeout=20)
    first.communicate(timeout=20)
    third = start_program(tmp_path, version="v1.2.5")
    third.communicate(timeout=20)
    runs = provider_runs(tmp_path)
    assert [r.version for r in runs] == ["v1.2.3", "v1.2.4", "v1.2.5"]
    assert [(a.version, b.version) for a, b in overlapping(runs)] == [("v1.2.3", "v1.2.4")]


# ----- the webhook receiver -----


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[WebhookReceiver]:
    server = WebhookReceiver(SECRET, tmp_path)
    server.start()
    yield server
    server.stop()


def post(receiver: WebhookReceiver, deploy_id: str, version: str = "abc1234", timeout: float = 5.0) -> httpx.Response:
    """A signed deploy request, as opsbot's webhook provider sends it."""
    from bot.adapters.deploy_providers.webhook import sign

    body = json.dumps({"deploy_id": deploy_id, "service": "web", "environment": "production", "version": version}).encode()
    stamp = str(int(time.time()))
    headers = {"Idempotency-Key": deploy_id, "X-Opsbot-Timestamp": stamp, "X-Opsbot-Signature": sign(SECRET, stamp, body)}
    return httpx.post(receiver.base_url + "/deploy", content=body, headers=headers, timeout=timeout)


def test_each_attempt_records_when_it_started_and_ended(receiver: WebhookReceiver) -> None:
    receiver.work_seconds = 0.3
    assert post(receiver, "d-1").status_code == 200
    [attempt] = receiver.attempts
    assert attempt["ended"] - attempt["started"] >= 0.3
    [run] = provider_runs(receiver.state_dir)
    assert (run.provider, run.deploy_id, run.target, run.exit) == ("webhook", "d-1", ("web", "production"), 200)
    assert run.ended == attempt["ended"]


def test_an_attempt_refused_before_the_work_is_not_a_run(receiver: WebhookReceiver) -> None:
    receiver.script = [("before", 503)]
    assert post(receiver, "d-1").status_code == 503
    assert receiver.attempts[0]["ended"] is not None and provider_runs(receiver.state_dir) == []


def test_two_requests_under_way_at_once_overlap(receiver: WebhookReceiver) -> None:
    receiver.hang = True  # hold both requests until both have arrived
    threads = [threading.Thread(target=post, args=(receiver, f"d-{n}", f"abc123{n}")) for n in range(2)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(provider_runs(receiver.state_dir)) == 2)
    receiver.hang = False
    for thread in threads:
        thread.join()
    runs = provider_runs(receiver.state_dir)
    assert all(r.ended is not None for r in runs) and len(overlapping(runs)) == 1
    assert len(receiver.done) == 2


def test_a_hung_request_times_out_for_the_caller_and_its_run_never_ends(receiver: WebhookReceiver) -> None:
    receiver.hang = True
    with pytest.raises(httpx.ReadTimeout):
        post(receiver, "d-1", timeout=0.5)
    [run] = provider_runs(receiver.state_dir)
    assert run.ended is None and receiver.attempts[0]["ended"] is None and receiver.done == {}
    receiver.hang = False  # the deploy finishes late, with nobody waiting for the answer
    wait_until(lambda: provider_runs(receiver.state_dir)[0].ended is not None)
    assert "d-1" in receiver.done
