"""Incident reminders through RQ on the real Redis, fired by real `opsbot worker` processes, over signed requests."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from rq import Worker

from bot.adapters.redis.jobs import JOB_FUNCTION, RqJobs
from bot.config import OpsConfig
from bot.console.slack_emulator import SlackEmulator
from tests.e2e.incident_helpers import declare, posts
from tests.support import Bot, eventually


@pytest.fixture
def app(
    emulator: SlackEmulator, pg_url: str, redis_url: str, redis_client: redis.Redis, redis_prefix: str, config: OpsConfig
) -> Bot:
    return Bot(
        emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=config, redis_url=redis_url
    )


def rq(app: Bot) -> RqJobs:
    assert isinstance(app.services.adapters.jobs, RqJobs)
    return app.services.adapters.jobs


def idle(app: Bot) -> bool:
    """No job waiting, scheduled or running on this test's queue."""
    queue = rq(app).queue
    return queue.count == 0 and queue.scheduled_job_registry.count == 0 and queue.started_job_registry.count == 0


@contextlib.contextmanager
def workers(app: Bot, tmp_path: Path, count: int) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for _ in range(count):
            stack.enter_context(app.worker(tmp_path))
        eventually(lambda: len(Worker.all(queue=rq(app).queue)) >= count, timeout=30)
        yield


def reminders(app: Bot, channel: str) -> list[str]:
    return [m.seen() for m in posts(app, channel, "was due at")]


def test_declare_two_updates_a_reminder_from_the_worker_and_resolve(app: Bot, tmp_path: Path) -> None:
    channel = declare(app, 'P1 Checkout errors --service api --impact "5% of checkouts fail"')
    app.command('incident update identified "Bad config in v1.4.2" --next 30m', channel=channel.id)
    app.command('incident update monitoring "Rolled back to v1.4.1" --next 2s', channel=channel.id)
    assert len(posts(app, channel.id, "Incident Update")) == 2
    with workers(app, tmp_path, 1):
        reminder = app.emulator.wait_for(lambda: reminders(app, channel.id), timeout=30)
        eventually(lambda: idle(app), timeout=10)
    assert len(reminder) == 1 and "@U0DEV, the next update for *INC-1* was due at" in reminder[0]
    resolved = app.command('incident resolve "Config reverted; error rate normal"', channel=channel.id)
    assert "INC-1 is resolved after" in resolved.seen()
    draft = app.command("incident postmortem 1").seen()
    assert (
        "## Timeline (UTC)" in draft
        and "Reminder · @opsbot · update overdue" in draft
        and "Config reverted; error rate normal" in draft
    )
    assert ("opsbot", "job.incidents.remind", "ok") in app.audit_actions()


def test_a_reminder_due_while_the_workers_are_down_fires_once_late_when_they_restart(app: Bot, tmp_path: Path) -> None:
    channel = declare(app, 'P1 Checkout errors --impact "5% of checkouts fail"')
    with workers(app, tmp_path, 1):  # a worker is up when the update is posted …
        app.command('incident update identified "Bad config" --next 5s', channel=channel.id)
        due = app.reads.incidents.by_channel(channel.id).next_update_at  # type: ignore[union-attr]
    assert due is not None and datetime.now(UTC) < due  # … and stopped before the reminder is due
    time.sleep(max((due - datetime.now(UTC)).total_seconds(), 0) + 1)  # the due time passes with no worker
    assert reminders(app, channel.id) == []
    with workers(app, tmp_path, 2):  # two replicas come back at once
        app.emulator.wait_for(lambda: reminders(app, channel.id), timeout=30)
        eventually(lambda: idle(app), timeout=10)
    assert len(reminders(app, channel.id)) == 1
    fired = next(m for m in app.emulator.in_channel(channel.id) if "was due at" in m.seen())
    assert float(fired.ts) > due.timestamp() + 1  # late, not lost


def test_the_same_reminder_run_twice_posts_once(app: Bot, tmp_path: Path) -> None:
    channel = declare(app, 'P1 Checkout errors --impact "5% of checkouts fail"')
    incident = app.reads.incidents.by_channel(channel.id)
    assert incident is not None
    payload = {"incident": incident.id, "seq": incident.reminder_seq, "due": datetime.now(UTC).isoformat()}
    for _ in range(3):  # as if a job were delivered again, or enqueued past its key
        rq(app).queue.enqueue(JOB_FUNCTION, "incidents.remind", payload, None)
    with workers(app, tmp_path, 2):
        app.emulator.wait_for(lambda: reminders(app, channel.id), timeout=30)
        eventually(lambda: rq(app).queue.count == 0 and rq(app).queue.started_job_registry.count == 0, timeout=10)
    assert len(reminders(app, channel.id)) == 1
