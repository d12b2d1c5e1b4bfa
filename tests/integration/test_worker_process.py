"""The fault kit's WorkerProcess: a real `opsbot worker` started, killed, terminated and restarted."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from bot.config import OpsConfig
from bot.console.slack_emulator import SlackEmulator
from tests.faults import WorkerProcess, spawn_worker  # noqa: F401 - fixtures
from tests.support import Bot

READY = "Listening on"  # RQ's line once the worker takes jobs


@pytest.fixture
def queued_bot(
    emulator: SlackEmulator, pg_url: str, redis_url: str, redis_client: redis.Redis, redis_prefix: str, config: OpsConfig
) -> Bot:
    """The app with its jobs on RQ in the real Redis, for a real worker to run."""
    return Bot(
        emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=config, redis_url=redis_url
    )


def program(tmp_path: Path, code: str) -> list[str]:
    """argv running ``code`` (a stand-in for the worker where a test needs one that misbehaves)."""
    path = tmp_path / "program.py"
    path.write_text(textwrap.dedent(code))
    return [sys.executable, str(path)]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_a_real_worker_starts_takes_jobs_and_stops_on_sigterm(queued_bot: Bot, tmp_path: Path) -> None:
    env = queued_bot.environment(tmp_path / "opsbot.yml")
    with WorkerProcess(env, tmp_path / "worker.log") as worker:
        assert worker.alive and worker.pid
        worker.wait_for_log(READY)
        reply = queued_bot.command("lock api staging for=1s --reason drill")
        assert "is locked by @U0DEV" in reply.seen()
        queued_bot.emulator.wait_for(
            lambda: [m for m in queued_bot.emulator.in_channel("C0DEPLOYS") if "has ended" in m.seen()], 20
        )
        code = worker.terminate(timeout=15)
    assert code == 0 and not worker.alive and worker.returncode == 0
    assert READY in worker.log_text()


def test_kill_is_sigkill_and_restart_runs_a_new_worker_logging_to_the_same_file(queued_bot: Bot, tmp_path: Path) -> None:
    worker = WorkerProcess(queued_bot.environment(tmp_path / "opsbot.yml"), tmp_path / "worker.log")
    with worker:
        worker.wait_for_log(READY)
        first = worker.pid
        assert worker.kill() == -signal.SIGKILL and not worker.alive
        worker.restart()
        assert worker.alive and worker.pid != first and worker.starts == 2
        worker.wait_for_log(READY)
        assert worker.log_text().count(READY) == 2 and worker.log_text(current_run=True).count(READY) == 1
        worker.restart()  # a running worker is stopped first
        worker.wait_for_log(READY)
        assert worker.starts == 3
    assert not worker.alive and not alive(first)


def test_the_context_manager_stops_the_worker_when_the_test_fails(queued_bot: Bot, tmp_path: Path) -> None:
    worker = WorkerProcess(queued_bot.environment(tmp_path / "opsbot.yml"), tmp_path / "worker.log")
    with pytest.raises(AssertionError, match="the test failed"), worker:
        pid = worker.pid
        raise AssertionError("the test failed")
    assert pid is not None and not alive(pid) and not worker.alive


def test_a_killed_worker_leaves_its_session_children_running_and_stop_kills_them(tmp_path: Path) -> None:
    """As opsbot runs a deploy program: in a session of its own, so killing the worker does not reach it."""
    argv = program(
        tmp_path,
        f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
        open({str(tmp_path / "child.pid")!r}, "w").write(str(child.pid))
        print("ready", flush=True)
        time.sleep(120)
        """,
    )
    worker = WorkerProcess(dict(os.environ), tmp_path / "worker.log", argv=argv).start()
    try:
        worker.wait_for_log("ready")
        child = int((tmp_path / "child.pid").read_text())
        worker.kill()
        assert alive(child) and worker.descendants() == [child]
    finally:
        worker.stop()
    assert not alive(child) and worker.descendants() == []


def test_kill_everything_also_kills_what_the_worker_started(tmp_path: Path) -> None:
    argv = program(
        tmp_path,
        """
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
        print("ready", flush=True)
        time.sleep(120)
        """,
    )
    with WorkerProcess(dict(os.environ), tmp_path / "worker.log", argv=argv) as worker:
        worker.wait_for_log("ready")
        assert len(worker.descendants()) == 1
        worker.kill(everything=True)
        assert worker.descendants() == [] and not worker.alive


def test_terminate_returns_none_when_sigterm_is_ignored_and_stop_still_kills(tmp_path: Path) -> None:
    argv = program(
        tmp_path,
        """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(120)
        """,
    )
    worker = WorkerProcess(dict(os.environ), tmp_path / "worker.log", argv=argv).start()
    worker.wait_for_log("ready")
    assert worker.terminate(timeout=0.5) is None and worker.alive
    assert worker.stop(timeout=0.5) == -signal.SIGKILL and not worker.alive


def test_wait_for_log_reports_a_worker_that_exits_first(queued_bot: Bot, tmp_path: Path) -> None:
    env = {**queued_bot.environment(tmp_path / "opsbot.yml"), "REDIS_URL": ""}
    with WorkerProcess(env, tmp_path / "worker.log") as worker:
        with pytest.raises(AssertionError, match="exited"):
            worker.wait_for_log(READY)
        assert worker.returncode not in (None, 0) and "REDIS_URL" in worker.log_text()


def test_spawn_worker_stops_every_worker_after_the_test(
    queued_bot: Bot, spawn_worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    env = queued_bot.environment(tmp_path / "opsbot.yml")
    first, second = spawn_worker(env, "first"), spawn_worker(env, "second")
    first.wait_for_log(READY)
    second.wait_for_log(READY)
    assert first.log_path == tmp_path / "first.log" and first.tag != second.tag
