"""The fault kit put together: a real `opsbot worker` whose Redis goes through a TcpProxy that is cut for 2 s.

This asserts what the kit does (the proxy cuts and restores, the harness sees the worker and its log),
not how opsbot behaves during the outage: that is what the durability work is about to change.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from bot.config import OpsConfig
from bot.console.slack_emulator import SlackEmulator
from tests.faults import TcpProxy, WorkerProcess, proxied_environment, redis_proxy, spawn_worker  # noqa: F401 - fixtures
from tests.support import Bot

READY = "Listening on"  # RQ's line once the worker takes jobs
OUTAGE_SECONDS = 2.0


@pytest.fixture
def queued_bot(
    emulator: SlackEmulator, pg_url: str, redis_url: str, redis_client: redis.Redis, redis_prefix: str, config: OpsConfig
) -> Bot:
    """The app with its jobs on RQ in the real Redis, for a real worker to run."""
    return Bot(
        emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=config, redis_url=redis_url
    )


def test_a_real_worker_behind_a_redis_proxy_cut_for_two_seconds(
    queued_bot: Bot, redis_proxy: TcpProxy, redis_url: str, spawn_worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    env = proxied_environment(queued_bot.environment(tmp_path / "opsbot.yml"), redis=redis_proxy)
    assert env["REDIS_URL"] == redis_proxy.url_for(redis_url) != redis_url
    worker = spawn_worker(env)
    worker.wait_for_log(READY)

    # Every Redis connection of the worker goes through the proxy.
    assert redis_proxy.connections_seen >= 1 and redis_proxy.open_connections >= 1
    assert f":{redis_proxy.port}" in worker.environment["REDIS_URL"]
    open_before, dropped_before = redis_proxy.open_connections, redis_proxy.connections_dropped

    started = time.monotonic()
    with redis_proxy.down(seconds=OUTAGE_SECONDS):
        # At once: each open connection reset, none left, new ones refused.
        assert redis_proxy.is_cut and redis_proxy.open_connections == 0
        assert redis_proxy.connections_dropped - dropped_before >= open_before
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(redis_proxy.address, timeout=1)
    assert OUTAGE_SECONDS <= time.monotonic() - started < OUTAGE_SECONDS + 1.5
    assert not redis_proxy.is_cut and redis_proxy.cuts == 1
    socket.create_connection(redis_proxy.address, timeout=1).close()  # listening again, same port

    # The worker saw the outage, and its log says so. Whether it rides it out or exits is opsbot's
    # business (today's worker logs "could not connect to Redis … retrying" and stays up).
    log = worker.log_text()
    assert any(sign in log for sign in ("Connection refused", "Connection reset", "ConnectionError")), log[-3000:]
    seen_after_outage = redis_proxy.connections_seen
    code = worker.wait(timeout=3)
    assert worker.alive == (code is None) and worker.returncode == code

    # A restart keeps the environment: the new worker comes up through the same proxy.
    first_pid = worker.pid
    worker.restart(timeout=10)
    worker.wait_for_log(READY)
    assert worker.pid != first_pid and worker.starts == 2
    assert redis_proxy.connections_seen > seen_after_outage

    # A kill is SIGKILL; nothing the harness started survives its stop().
    assert worker.kill() == -9 and not worker.alive
    worker.stop()
    assert worker.descendants() == []
