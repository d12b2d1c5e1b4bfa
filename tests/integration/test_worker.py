"""Background jobs through RQ on the real Redis, run by a real `opsbot worker` process."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from rq import Queue

from bot.config import OpsConfig
from bot.console.slack_emulator import SlackEmulator
from bot.jobs import execute
from tests.support import Bot


def test_a_hold_that_runs_out_is_announced_by_the_worker(
    emulator: SlackEmulator,
    pg_url: str,
    redis_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    config: OpsConfig,
    tmp_path: Path,
) -> None:
    app = Bot(
        emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=config, redis_url=redis_url
    )
    reply = app.command("lock api staging for=2s --reason 'schema change'")
    assert "is locked by @U0DEV" in reply.seen()
    with app.worker(tmp_path):
        ended = emulator.wait_for(lambda: [m for m in emulator.in_channel("C0DEPLOYS") if "has ended" in m.seen()], timeout=20)
    assert len(ended) == 1
    assert "The hold on *deploy/api/staging* by @U0DEV has ended (schema change)" in ended[0].seen()
    assert ("opsbot", "job.locks.hold_ended", "ok") in app.audit_actions()


def test_breaking_a_hold_cancels_its_end_notice(
    emulator: SlackEmulator,
    pg_url: str,
    redis_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    config: OpsConfig,
    tmp_path: Path,
) -> None:
    app = Bot(
        emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=config, redis_url=redis_url
    )
    app.command("lock api staging for=2s --reason x")
    app.command("unlock api staging --reason 'done early'", user="U0ADMIN")
    app.command("lock api production for=3s --reason y")
    with app.worker(tmp_path):
        emulator.wait_for(
            lambda: [m for m in emulator.in_channel("C0DEPLOYS") if "production" in m.seen() and "has ended" in m.seen()],
            timeout=20,
        )
    assert not [m for m in emulator.in_channel("C0DEPLOYS") if "deploy/api/staging" in m.seen() and "has ended" in m.seen()]


def test_a_job_queued_by_an_earlier_version_still_runs(
    emulator: SlackEmulator,
    pg_url: str,
    redis_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    config: OpsConfig,
    tmp_path: Path,
) -> None:
    """Reminders and expiries sit in Redis for hours: one scheduled before an upgrade runs on the new worker.

    It is queued here exactly as earlier versions queued it, with RQ's own API and the literal callable path
    ``bot.jobs.execute`` (name, payload, key), not through opsbot's code.
    """
    app = Bot(
        emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=config, redis_url=redis_url
    )
    payload = {"name": "deploy/api/staging", "fence": 41, "holder": "U0DEV", "reason": "queued before the upgrade"}
    queue = Queue(f"{redis_prefix}jobs", connection=redis.Redis.from_url(redis_url))
    queue.enqueue_at(
        datetime.now(UTC),
        "bot.jobs.execute",
        "locks.hold_ended",
        payload,
        "lock-hold:deploy/api/staging:41",
        job_id="k-" + "0" * 40,
        result_ttl=3600,
    )
    with app.worker(tmp_path):
        ended = emulator.wait_for(lambda: [m for m in emulator.in_channel("C0DEPLOYS") if "has ended" in m.seen()], timeout=20)
    assert "The hold on *deploy/api/staging* by @U0DEV has ended (queued before the upgrade)" in ended[0].seen()
    assert ("opsbot", "job.locks.hold_ended", "ok") in app.audit_actions()


def test_the_job_callable_refuses_to_run_outside_opsbot_worker() -> None:
    with pytest.raises(RuntimeError, match="must run on `opsbot worker`"):
        execute("locks.hold_ended", {})
