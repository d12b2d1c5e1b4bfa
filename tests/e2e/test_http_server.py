"""`opsbot serve` as Slack meets it: gunicorn, signed POSTs on /slack/events, and the probes."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from bot.console import payloads
from bot.console.slack_emulator import SlackEmulator
from tests import health_stubs
from tests.support import Bot, eventually, make_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(opsbot: Bot, tmp_path: Path, **env: str) -> Iterator[str]:
    with serving_process(opsbot, tmp_path, **env) as (base, _):
        yield base


@contextlib.contextmanager
def serving_process(opsbot: Bot, tmp_path: Path, **env: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`opsbot serve` in a session of its own (as a platform runs it: one process group), and its base URL."""
    port = free_port()
    environment = {**opsbot.environment(tmp_path / "opsbot.yml"), "PORT": str(port), "WEB_CONCURRENCY": "2", **env}
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve"], env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60  # gunicorn and its workers start slowly on a loaded machine
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
        yield base, process
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture
def served(opsbot: Bot, tmp_path: Path, redis_url: str) -> Iterator[str]:
    with serving(opsbot, tmp_path, REDIS_URL=redis_url) as base:
        yield base


def post_command(
    opsbot: Bot, base: str, text: str, user: str = "U0DEV", secret: str | None = None, timestamp: int | None = None
) -> tuple[httpx.Response, str]:
    url = opsbot.emulator.response_url("C0OPS", user)
    body = payloads.slash_command(text, user_id=user, channel_id="C0OPS", response_url=url)
    headers = payloads.sign(secret or opsbot.secret, body, timestamp=timestamp)
    return httpx.post(base + "/slack/events", content=body, headers=headers, timeout=10), url


def test_liveness_and_readiness(served: str) -> None:
    assert httpx.get(served + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(served + "/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready", "redis": "ok", "database": "ok"}


def test_signed_commands_are_acked_and_answered(opsbot: Bot, served: str) -> None:
    for text, expected in [("help", "opsbot help"), ("locks", "No locks are held"), ("audit", "Audit log")]:
        response, url = post_command(opsbot, served, text, user="U0VIEWER")
        assert response.status_code == 200 and response.text == ""
        assert expected in opsbot.reply_to(url).seen()


def test_forged_missing_and_stale_signatures_get_401(opsbot: Bot, served: str) -> None:
    forged, _ = post_command(opsbot, served, "locks", secret="wrong")
    stale, _ = post_command(opsbot, served, "locks", timestamp=int(time.time()) - 600)
    body = payloads.slash_command("locks", user_id="U0DEV", channel_id="C0OPS", response_url="http://127.0.0.1:1/")
    unsigned = httpx.post(served + "/slack/events", content=body, headers={"content-type": "application/x-www-form-urlencoded"})
    assert (forged.status_code, stale.status_code, unsigned.status_code) == (401, 401, 401)
    assert opsbot.audit_actions() == []


def test_user_input_never_gets_a_500(opsbot: Bot, served: str) -> None:
    for text in ["", "x" * 40_000, '"unbalanced', "💥" * 50, "lock api production --reason"]:
        response, url = post_command(opsbot, served, text)
        assert response.status_code == 200
        assert "Traceback" not in opsbot.reply_to(url).seen()


def test_readiness_names_the_store_that_is_down(opsbot: Bot, tmp_path: Path) -> None:
    with serving(opsbot, tmp_path, REDIS_URL="redis://127.0.0.1:1/0") as base:
        ready = httpx.get(base + "/readyz")
    assert ready.status_code == 503
    body = ready.json()
    assert body["failing"] == ["redis"] and body["database"] == "ok" and body["redis"].startswith("unreachable")


def test_events_url_verification_is_answered(opsbot: Bot, served: str) -> None:
    body = '{"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}'
    headers = payloads.sign(opsbot.secret, body, content_type="application/json")
    response = httpx.post(served + "/slack/events", content=body, headers=headers)
    assert response.status_code == 200 and "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" in response.text


def ready_work_processes(log: Path, count: int, timeout: float = 60) -> list[int]:
    """PIDs of the work processes the serve log has said are ready, once it has said so of ``count`` of them."""
    pattern = re.compile(r"work process (\d+) is ready")
    return eventually(lambda: len(found := pattern.findall(log.read_text())) >= count and [int(p) for p in found], timeout)


def hanging_health(
    opsbot_config: dict[str, Any] | None = None,
) -> tuple[dict[str, health_stubs.Route], threading.Event, threading.Event]:
    """A /health route that holds each request until ``release`` is set, then answers healthy; ``reached`` is set when
    a request arrives."""
    reached, release = threading.Event(), threading.Event()

    def route(handler: Any, stopping: threading.Event) -> None:
        reached.set()
        if release.wait(30):
            health_stubs.json_reply({"status": "ok"})(handler, stopping)

    return {"/health": route}, reached, release


def hanging_bot(
    server: health_stubs.StubServer, emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, prefix: str
) -> Bot:
    config = make_config(
        services={"api": {"environments": {"staging": {"health": [{"url": server.url("/health"), "timeout_ms": 30_000}]}}}}
    )
    return Bot(emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=prefix, config=config)


def test_a_command_whose_work_process_is_killed_is_told_so_and_the_next_one_is_answered(
    redis_url: str, pg_url: str, redis_client: redis.Redis, redis_prefix: str, emulator: SlackEmulator, tmp_path: Path
) -> None:
    """The gunicorn worker acks and hands the work over; killed mid-command, the work process is replaced, the user
    hears their command may be partly applied (never that nothing changed), and the audit log records it. The
    replacement runs the config its gunicorn worker runs, not an edit made to the file since."""
    routes, reached, _ = hanging_health()
    with health_stubs.serving(routes) as server:
        opsbot = hanging_bot(server, emulator, pg_url, redis_client, redis_prefix)
        with serving(opsbot, tmp_path, REDIS_URL=redis_url, WEB_CONCURRENCY="1", OPSBOT_WORK_PROCESSES="1") as base:
            log = tmp_path / "serve.log"
            [pid] = ready_work_processes(log, 1)
            response, url = post_command(opsbot, base, "health api staging")
            assert response.status_code == 200 and reached.wait(10)  # the check hangs, in the work process
            edited = (
                (tmp_path / "opsbot.yml")
                .read_text()
                .replace("    worker:", "    newsvc:\n      environments: [staging]\n    worker:")
            )
            (tmp_path / "opsbot.yml").write_text(edited)
            os.kill(pid, signal.SIGKILL)
            told = opsbot.reply_to(url, timeout=10).seen()
            assert "stopped part-way through `/ops health api staging`" in told and "signal 9" in told
            assert "may have been partly applied" in told and "nothing" not in told
            assert ("U0DEV", "work.lost", "error") in opsbot.audit_actions()
            replacement = ready_work_processes(log, 2)[-1]
            assert replacement != pid
            response, url = post_command(opsbot, base, "help")
            assert response.status_code == 200 and "opsbot help" in opsbot.reply_to(url).seen()
            response, url = post_command(opsbot, base, "lock newsvc staging --reason drift")
            assert "newsvc" in opsbot.reply_to(url).seen() and "locked by" not in opsbot.reply_to(url).seen()


def test_a_stop_sent_to_every_process_at_once_lets_running_commands_finish_and_answer(
    redis_url: str, pg_url: str, redis_client: redis.Redis, redis_prefix: str, emulator: SlackEmulator, tmp_path: Path
) -> None:
    """Heroku and systemd stop a service by sending SIGTERM to all of its processes: the work processes keep going
    until their gunicorn worker has seen its commands through."""
    routes, reached, release = hanging_health()
    with health_stubs.serving(routes) as server:
        opsbot = hanging_bot(server, emulator, pg_url, redis_client, redis_prefix)
        with serving_process(opsbot, tmp_path, REDIS_URL=redis_url, WEB_CONCURRENCY="1", OPSBOT_WORK_PROCESSES="1") as (
            base,
            serve,
        ):
            ready_work_processes(tmp_path / "serve.log", 1)
            response, url = post_command(opsbot, base, "health api staging")
            assert response.status_code == 200 and reached.wait(10)
            os.killpg(serve.pid, signal.SIGTERM)
            time.sleep(1.5)
            release.set()
            assert "api in staging" in opsbot.reply_to(url, timeout=15).seen()
            assert serve.wait(timeout=30) == 0
    assert ("U0DEV", "work.lost", "error") not in opsbot.audit_actions()


def test_a_gunicorn_worker_that_exits_is_replaced_and_the_server_keeps_serving(
    opsbot: Bot, tmp_path: Path, redis_url: str
) -> None:
    """One worker ending (a timeout, a reload, a clean exit) is gunicorn's to replace: the metrics folder it shares with
    the others stays, and the replacement boots."""
    with serving(opsbot, tmp_path, REDIS_URL=redis_url, WEB_CONCURRENCY="2") as base:
        log = tmp_path / "serve.log"
        booted = re.compile(r"Booting worker with pid: (\d+)")
        first = eventually(lambda: len(found := booted.findall(log.read_text())) >= 2 and found, timeout=30)
        os.kill(int(first[0]), signal.SIGTERM)
        eventually(lambda: len(booted.findall(log.read_text())) >= 3, timeout=30)
        time.sleep(1)
        assert "Worker failed to boot" not in log.read_text()
        for _ in range(4):  # either worker may answer
            assert httpx.get(base + "/metrics").status_code == 200
            response, url = post_command(opsbot, base, "help", user="U0VIEWER")
            assert response.status_code == 200 and "opsbot help" in opsbot.reply_to(url).seen()
