"""Health watches on the real Redis: one announcement per state change across replicas and restarts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from rq import Queue

from bot.adapters.redis.watches import RedisWatchStore
from bot.config import OpsConfig
from bot.console.slack_emulator import Posted, SlackEmulator
from bot.domain.health.model import CheckOutcome, HealthReport
from bot.domain.shared.policy import Actor
from bot.domain.shared.ports import SystemClock
from tests.fakes import FakeJobs
from tests.health_stubs import StubServer, Switch, serving
from tests.support import Bot, FrozenClock, eventually, make_config, start_emulator

TARGET = {"service": "api", "environment": "production"}


def watch_config(server: StubServer, **rules: object) -> OpsConfig:
    watch = {
        "services": ["api"],
        "environments": ["production"],
        "interval": "1s",
        "failures": 2,
        "window": "1m",
        "slow_checks": 3,
        "recover_checks": 2,
        **rules,
    }
    return make_config(
        services={
            "api": {"environments": {"staging": {}, "production": {"health": [{"url": server.url(), "timeout_ms": 1000}]}}}
        },
        health={"watches": [watch]},
    )


@pytest.fixture
def switch() -> Switch:
    return Switch(healthy=False)


@pytest.fixture
def server(switch: Switch) -> Iterator[StubServer]:
    with serving({"/health": switch}) as running:
        yield running


@pytest.fixture
def watched(server: StubServer) -> OpsConfig:
    return watch_config(server)


@pytest.fixture
def alerts_emulator(watched: OpsConfig) -> Iterator[SlackEmulator]:
    emulator = start_emulator(watched)
    yield emulator
    emulator.stop()


@pytest.fixture
def queue_cleanup(redis_url: str, redis_prefix: str) -> Iterator[None]:
    """Drop the watch chains this test's workers left scheduled in its own RQ queue."""
    yield
    connection = redis.Redis.from_url(redis_url)
    queue = Queue(f"{redis_prefix}jobs", connection=connection)
    for job_id in queue.scheduled_job_registry.get_job_ids():
        queue.scheduled_job_registry.remove(job_id, delete_job=True)
    queue.delete(delete_jobs=True)


def alerts(emulator: SlackEmulator, word: str) -> list[Posted]:
    """Alerts whose headline (the message's fallback text) has ``word``."""
    return [m for m in emulator.in_channel("C0ALERTS") if word in m.text]


def ticks_so_far(redis_client: redis.Redis, prefix: str) -> int:
    state = RedisWatchStore(redis_client, SystemClock(), prefix).load("api/production") or {}
    return int(state.get("ticks", 0))


def wait_ticks(redis_client: redis.Redis, prefix: str, more: int) -> None:
    """Let ``more`` further checks happen (a state read, not a sleep)."""
    target = ticks_so_far(redis_client, prefix) + more
    eventually(lambda: ticks_so_far(redis_client, prefix) >= target, timeout=30)


def test_two_workers_announce_down_and_recovery_once_each(
    alerts_emulator: SlackEmulator,
    watched: OpsConfig,
    switch: Switch,
    pg_url: str,
    redis_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    tmp_path: Path,
    queue_cleanup: None,
) -> None:
    app = Bot(
        emulator=alerts_emulator,
        db_url=pg_url,
        redis_client=redis_client,
        prefix=redis_prefix,
        config=watched,
        redis_url=redis_url,
    )
    with app.worker(tmp_path), app.worker(tmp_path):
        [down] = alerts_emulator.wait_for(lambda: alerts(alerts_emulator, "DOWN"), timeout=30)
        wait_ticks(redis_client, redis_prefix, 3)
        switch.healthy = True
        alerts_emulator.wait_for(lambda: alerts(alerts_emulator, "recovered"), timeout=30)
        wait_ticks(redis_client, redis_prefix, 3)
    assert "api production DOWN: /health status 503 (expected 200) (2 failures in 1 min)" in down.seen()
    assert [b["text"]["text"] for b in down.buttons()] == ["Declare incident", "Silence 1h"]
    assert len(alerts(alerts_emulator, "DOWN")) == 1 and len(alerts(alerts_emulator, "recovered")) == 1
    actions = [action for _, action, _ in app.audit_actions()]
    assert actions.count("health.down") == 1 and actions.count("health.recovered") == 1
    assert not [a for a in actions if a.startswith("job.health")]  # ticks leave no audit rows


def test_a_restarted_worker_does_not_announce_an_outage_twice(
    alerts_emulator: SlackEmulator,
    watched: OpsConfig,
    switch: Switch,
    pg_url: str,
    redis_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    tmp_path: Path,
    queue_cleanup: None,
) -> None:
    app = Bot(
        emulator=alerts_emulator,
        db_url=pg_url,
        redis_client=redis_client,
        prefix=redis_prefix,
        config=watched,
        redis_url=redis_url,
    )
    with app.worker(tmp_path):
        alerts_emulator.wait_for(lambda: alerts(alerts_emulator, "DOWN"), timeout=30)
    with app.worker(tmp_path):
        wait_ticks(redis_client, redis_prefix, 3)  # still down, checked again by the new process
        assert len(alerts(alerts_emulator, "DOWN")) == 1
        switch.healthy = True
        alerts_emulator.wait_for(lambda: alerts(alerts_emulator, "recovered"), timeout=30)
    assert len(alerts(alerts_emulator, "DOWN")) == 1 and len(alerts(alerts_emulator, "recovered")) == 1


class SlowFailingProbe:
    """Fails every check, slowly enough that racing ticks overlap."""

    def __init__(self) -> None:
        self.calls = 0
        self._guard = threading.Lock()

    def check(self, service: str, environment: str) -> HealthReport:
        with self._guard:
            self.calls += 1
        time.sleep(0.1)
        return HealthReport(
            service,
            environment,
            "failed",
            [CheckOutcome("/health", "http://x/health", "failed", 2000.0, "timeout after 2000 ms")],
        )


def test_racing_watchers_on_one_redis_check_once_per_interval_and_announce_once(
    emulator: SlackEmulator,
    pg_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    server: StubServer,
) -> None:
    clock = FrozenClock()
    config = watch_config(server, failures=2, interval="1m", window="5m")
    probe = SlowFailingProbe()
    # Only the racing threads tick: with in-process jobs, each replica's timer would also run the
    # successor ticks they schedule, late under load, holding the lease while a whole round races.
    replicas = [
        Bot(
            emulator=emulator,
            db_url=pg_url,
            redis_client=redis_client,
            prefix=redis_prefix,
            config=config,
            clock=clock,
            health=probe,
            jobs=FakeJobs(),
        ).services
        for _ in range(2)
    ]
    for _ in range(4):
        threads = [
            threading.Thread(target=replicas[i % 2].health.watches.tick, args=(Actor("opsbot", source="job"), TARGET))
            for i in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        clock.advance(minutes=1)
    assert probe.calls == 4  # one check per interval, whichever replica got the lease
    assert len(alerts(emulator, "DOWN")) == 1


def test_a_lease_that_ran_out_cannot_overwrite_a_newer_holder(redis_client: redis.Redis, redis_prefix: str) -> None:
    store = RedisWatchStore(redis_client, SystemClock(), redis_prefix)
    stale = store.lease("api/production", ttl_seconds=0.05)
    assert stale is not None and store.lease("api/production", 30) is None
    fresh = eventually(lambda: store.lease("api/production", 30))
    assert fresh.fence > stale.fence
    assert store.save(fresh, {"announced": "down"}) is True
    assert store.save(stale, {"announced": "ok"}) is False
    store.release(stale)  # a stale release must not free the newer holder's lease
    assert store.lease("api/production", 30) is None
    assert store.load("api/production") == {"announced": "down"}
