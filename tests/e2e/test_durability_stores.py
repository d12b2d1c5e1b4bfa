"""Durable operations when Redis or PostgreSQL blips: cases 1-4 and 7 of issue "Durable operations" on the stage.

The app runs in the test process, real `opsbot worker`s run the jobs; both reach Redis and PostgreSQL through
TCP proxies that cut every connection and refuse new ones for a while. Each case ends with
``stage.assert_kept()``: every deploy over, one outcome each, nothing posted twice, the provider called at most
once per deploy and never twice at once for a target, no lock left held, the audit chain intact.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import redis
from pytest_mock import MockerFixture

from bot.adapters.redis.locks import RedisLockStore
from bot.config import OpsConfig
from bot.console.slack_emulator import Posted
from tests.deploy_kit import ServiceDouble, provider_runs, services_double, state_dir  # noqa: F401 - fixtures
from tests.durability import Stage, direct_redis, stage, stage_config  # noqa: F401 - fixtures
from tests.faults import pg_proxy, redis_proxy, spawn_worker  # noqa: F401 - fixtures
from tests.support import eventually

REQUEST = "Approval needed: Deploy v1.2.3 of api to production"


@pytest.fixture
def config(state_dir: Path, services_double: ServiceDouble) -> OpsConfig:
    return stage_config(state_dir, services_double, seconds=6)


def approval_request(stage: Stage) -> Posted:
    return eventually(lambda: next((m for m in stage.emulator.in_channel("C0DEPLOYS") if REQUEST in m.seen()), None))


def seen(payloads: list[dict[str, Any]]) -> str:
    return "\n".join(str(p.get("text", "")) for p in payloads)


def test_redis_gone_as_the_last_approver_clicks_counts_the_vote_and_the_deploy_starts_once_it_is_back(stage: Stage) -> None:
    stage.worker()
    stage.bot.command("deploy v1.2.3 to production", user="U0DEV")
    request = approval_request(stage)
    stage.bot.click(request, "Approve", "U0APPROVER1")

    with stage.redis_proxy.down(seconds=4):
        answer = seen(stage.bot.click(request, "Approve", "U0APPROVER2"))
        assert "nothing was changed" not in answer  # the vote is in the database: it counted
        assert "That was the last approval needed; it is approved." in answer
        assert "The deploy starts as soon as the job queue (Redis) is back; nothing needs to be done again." in answer
        assert "Approved" in stage.emulator.find(request.ts).seen() or "2 of 2" in stage.emulator.find(request.ts).seen()

    [deploy] = stage.assert_kept(timeout=60)
    assert deploy.state.value == "succeeded"
    assert len(provider_runs(stage.state_dir)) == 1
    actions = stage.audit_actions()
    assert ("U0APPROVER2", "click.approve", "approved") in actions and ("U0APPROVER2", "deploy.approved", "ok") in actions
    assert not [a for a in actions if a[2] == "unavailable"]  # nothing says the vote failed


def test_redis_gone_right_after_the_lock_is_taken_still_posts_one_live_request_that_runs_once_approved(
    stage: Stage, mocker: MockerFixture
) -> None:
    stage.worker()
    acquire = RedisLockStore.acquire

    def acquire_then_redis_goes(self: RedisLockStore, *args: Any, **kwargs: Any) -> Any:
        lease = acquire(self, *args, **kwargs)
        stage.redis_proxy.cut_for(4)  # between the lock and the request's message and expiry
        return lease

    mocker.patch.object(RedisLockStore, "acquire", acquire_then_redis_goes)
    reply = stage.bot.command("deploy v1.2.3 to production", user="U0DEV").seen()
    mocker.stopall()
    assert "nothing was changed" not in reply and "waiting for 2 approvals" in reply
    request = approval_request(stage)
    eventually(lambda: not stage.redis_proxy.is_cut, timeout=10)
    stage.bot.click(request, "Approve", "U0APPROVER1")
    stage.bot.click(request, "Approve", "U0APPROVER2")

    [deploy] = stage.assert_kept(timeout=60)
    assert deploy.state.value == "succeeded"
    keys = [((m.metadata or {}).get("event_payload") or {}).get("key") or "" for m in stage.emulator.in_channel("C0DEPLOYS")]
    assert len([k for k in keys if k.startswith("approval:")]) == 1  # one request message, edited as votes came


def test_redis_down_for_8_seconds_mid_deploy_keeps_the_worker_running_and_announces_the_outcome_once(stage: Stage) -> None:
    worker = stage.worker()
    stage.bot.command("deploy v2.0.0 to staging")
    [deploy] = stage.deploys()
    eventually(lambda: provider_runs(stage.state_dir), timeout=20)  # the deploy program is running
    with stage.redis_proxy.down(seconds=8):
        pass

    outcome = stage.outcome(deploy.id, timeout=60)
    assert "v2.0.0" in outcome.seen() and "staging" in outcome.seen()
    stage.assert_kept(timeout=60)
    assert stage.deploy(deploy.id).state.value == "succeeded"
    assert worker.alive, worker.log_text()[-3000:]  # it rode out the outage: no restart needed
    # and it still takes jobs afterwards
    stage.bot.command("deploy v2.0.1 to staging")
    newest = stage.deploys()[0]
    assert "v2.0.1" in stage.outcome(newest.id, timeout=60).seen()
    stage.assert_kept(timeout=60)


def test_postgres_down_for_8_seconds_mid_deploy_records_and_announces_the_outcome_once_it_is_back(stage: Stage) -> None:
    worker = stage.worker()
    stage.bot.command("deploy v2.0.0 to staging")
    [deploy] = stage.deploys()
    eventually(lambda: provider_runs(stage.state_dir), timeout=20)
    with stage.pg_proxy.down(seconds=8):
        pass

    outcome = stage.outcome(deploy.id, timeout=60)
    assert "v2.0.0" in outcome.seen()
    stage.assert_kept(timeout=60)
    assert stage.deploy(deploy.id).state.value in ("succeeded", "failed")
    assert len(provider_runs(stage.state_dir)) == 1  # settled, not deployed again
    assert worker.alive, worker.log_text()[-3000:]


def test_a_lock_key_lost_from_redis_mid_deploy_never_lets_a_second_deploy_of_the_target_overlap(
    stage: Stage, redis_url: str, redis_prefix: str
) -> None:
    stage.worker()
    stage.bot.command("deploy v2.0.0 to staging")
    [first] = stage.deploys()
    eventually(lambda: provider_runs(stage.state_dir), timeout=20)
    raw: redis.Redis = direct_redis(redis_url)
    assert raw.delete(f"{redis_prefix}lock:deploy/api/staging") == 1  # an eviction, a FLUSHDB, a failover without the key

    second = stage.bot.command("deploy v2.0.1 to staging", user="U0ADMIN").seen()
    # Redis no longer knows the lock; the database still keeps one deploy per target in flight. (On a slow machine
    # the first run's heartbeat may notice the lost lock, stop its provider and end before this command arrives:
    # then the second may go ahead, but only after the first run ended — never beside it.)
    refused = "already has a deploy or rollback that is not over" in second
    if refused:
        assert first.id in second and [d.version for d in stage.deploys()] == ["v2.0.0"]

    outcome = stage.outcome(first.id, timeout=30)
    assert "lost its deploy lock while it ran" in outcome.seen()
    stage.assert_kept(timeout=60)
    assert stage.deploy(first.id).state.value == "lock_lost"
    runs = provider_runs(stage.state_dir)
    assert runs[0].deploy_id == first.id and runs[0].ended is not None and runs[0].exit != 0  # stopped by its heartbeat
    for earlier, later in itertools.pairwise(runs):
        assert earlier.ended is not None and later.started >= earlier.ended, runs  # never two at once

    if refused:
        again = stage.bot.command("deploy v2.0.1 to staging", user="U0ADMIN").seen()  # now the target is free
        assert "v2.0.1" in again and "not over" not in again
    newest = stage.deploys()[0]
    assert newest.version == "v2.0.1" and "v2.0.1" in stage.outcome(newest.id, timeout=40).seen()
    stage.assert_kept(timeout=60)
    assert stage.deploy(newest.id).state.value == "succeeded"


def test_a_command_while_postgres_is_down_says_so_without_naming_hosts_and_changes_nothing(stage: Stage) -> None:
    with stage.pg_proxy.down():
        reply = stage.bot.command("deploy v2.0.0 to staging").seen()
    assert "The database is unreachable right now; nothing was changed. (connection refused)" in reply
    assert "127.0.0.1" not in reply and "port" not in reply and "opsbot_t_" not in reply
    assert stage.deploys() == [] and stage.bot.services.adapters.locks.held() == []


def test_redis_gone_during_an_incident_update_ack_and_resolution_never_half_applies_them(stage: Stage, redis_url: str) -> None:
    """The update and the resolution each commit with their timeline entry and their reminder changes as outbox
    effects: the reply never says "nothing was changed" after the update was posted, and once Redis is back the old
    reminder is cancelled and the new one scheduled (then cancelled by the resolution)."""
    from rq import Queue

    stage.worker()
    declared = stage.bot.command('incident declare P2 "Checkout errors" --service api', user="U0DEV")
    assert "Declared" in declared.seen(), declared.seen()
    [incident] = stage.bot.reads.incidents.open_incidents()
    scheduled = Queue(stage.bot.settings.opsbot_queue, connection=direct_redis(redis_url)).scheduled_job_registry
    [declared_reminder] = eventually(scheduled.get_job_ids)

    with stage.redis_proxy.down(seconds=4):
        update = f'incident update INC-{incident.id} investigating "rolling back" --impact "5% of checkouts fail" --next 30m'
        said = stage.bot.command(update, user="U0DEV").seen()
        assert "nothing was changed" not in said and "Update posted in #" in said, said
        assert "Reminders will be scheduled as soon as the job queue (Redis) is back" in said
    timeline = [entry.text for entry in stage.bot.reads.incidents.timeline(incident.id)]
    assert any("rolling back" in text for text in timeline), timeline
    # The old reminder's cancel and the new one's schedule are separate outbox effects, delivered in either order.
    [update_reminder] = eventually(
        lambda: len(ids := scheduled.get_job_ids()) == 1 and ids != [declared_reminder] and ids, timeout=30
    )

    with stage.redis_proxy.down(seconds=4):
        said = stage.bot.command("incident ack", user="U0DEV", channel=incident.channel_id).seen()  # in its channel
        assert "nothing was changed" not in said and "acknowledged the incident" in said, said

    with stage.redis_proxy.down(seconds=4):
        said = stage.bot.command(f"incident resolve INC-{incident.id} rolled back", user="U0DEV").seen()
        assert "nothing was changed" not in said and "is resolved" in said, said
    assert stage.bot.reads.incidents.open_incidents() == []
    eventually(lambda: scheduled.get_job_ids() == [], timeout=30)
    assert update_reminder != declared_reminder
