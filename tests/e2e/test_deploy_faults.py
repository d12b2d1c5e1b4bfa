"""Deploys when things go wrong: Redis down, timeouts, broken locks, expiry, late clicks, a real RQ worker."""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from pytest_mock import MockerFixture

from bot.adapters.local_jobs import InProcessJobs
from bot.adapters.outbox_delivery import METADATA_TYPE, OutboxDelivery
from bot.adapters.redis.connection import connect
from bot.adapters.sql.deploys import SqlDeployRepository
from bot.adapters.sql.outbox import OutboxTable, SqlOutbox
from bot.config import OpsConfig
from bot.console.slack_emulator import SlackEmulator
from bot.domain.deploys.model import DeployState
from bot.domain.shared.errors import Unavailable
from bot.domain.shared.messages import Notice
from bot.domain.shared.ports import SystemClock
from tests.deploy_kit import (  # noqa: F401 - fixtures
    RecordedEvents,
    ServiceDouble,
    deploy_config,
    deployed_log,
    services_double,
    state_dir,
)
from tests.e2e.test_deploys import approval_for, posted
from tests.fakes import FakeJobs
from tests.support import Bot, FrozenClock, autocommit, eventually


@pytest.fixture
def config(state_dir: Path, services_double: ServiceDouble) -> OpsConfig:
    return deploy_config(state_dir, services_double.base_url, command_args=("--wait-for", str(state_dir / "go")))


def make_app(
    emulator: SlackEmulator, db_url: str, redis_client: redis.Redis, prefix: str, config: OpsConfig, **kw: object
) -> Bot:
    return Bot(
        emulator=emulator, db_url=db_url, redis_client=redis_client, prefix=prefix, config=config, events=RecordedEvents(), **kw
    )


@pytest.fixture
def app(emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str, config: OpsConfig) -> Bot:
    return make_app(emulator, pg_url, redis_client, redis_prefix, config)


def test_redis_unreachable_refuses_the_deploy_clearly_triggers_nothing_and_is_audited(
    emulator: SlackEmulator, pg_url: str, redis_prefix: str, config: OpsConfig, state_dir: Path
) -> None:
    app = make_app(emulator, pg_url, connect("redis://127.0.0.1:1/0"), redis_prefix, config)
    reply = app.command("deploy v1.2.3 to production")
    assert "Redis is unreachable right now; nothing was changed." in reply.seen()
    assert emulator.in_channel("C0DEPLOYS") == []
    assert app.reads.deploys.history(None, None, 5) == []  # type: ignore[union-attr]
    assert deployed_log(state_dir) == []
    assert app.audit_actions()[-2:] == [("U0DEV", "command.deploy", "started"), ("U0DEV", "command.deploy", "unavailable")]


def provider_running(app: Bot) -> bool:
    return ("opsbot", "deploy.provider_call", "started") in app.audit_actions()


def test_force_unlock_of_a_running_deploy_stops_its_provider_and_records_the_lost_lock(app: Bot, state_dir: Path) -> None:
    app.command("deploy v2.0.0 to staging")
    posted(app, "🚀 Starting deployment of v2.0.0 to staging")
    eventually(lambda: provider_running(app))
    app.command('unlock api staging --reason "stuck"', user="U0ADMIN")
    lost = posted(app, "lost its deploy lock while it ran")  # its heartbeat found the lock gone and stopped the program
    assert "its result was not recorded" in lost.seen()
    assert "was stopped: its deploy lock was broken or ran out" in lost.seen()
    (state_dir / "go").touch()
    assert deployed_log(state_dir) == []  # the deploy program was stopped before it deployed anything
    assert not [m for m in app.emulator.in_channel("C0DEPLOYS") if "completed" in m.seen()]
    assert app.reads.deploys.history("api", "staging", 1)[0].state.value == "lock_lost"  # type: ignore[union-attr]
    assert "lock lost" in app.command("history api staging").seen()
    assert ("opsbot", "deploy.lock_lost", "lock_lost") in app.audit_actions()
    assert eventually(lambda: app.services.adapters.events.kinds()[-1] == "deploy.failed")  # type: ignore[attr-defined]


def test_a_lock_that_runs_out_between_queueing_and_starting_stops_the_run_before_its_announcement(
    emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str, config: OpsConfig, state_dir: Path
) -> None:
    jobs = FakeJobs()  # the run job waits in the queue until the test runs it
    app = make_app(emulator, pg_url, redis_client, redis_prefix, config, jobs=jobs)
    app.command("deploy v2.0.0 to staging", user="U0DEV")
    [(name, payload, _key)] = [job for job in jobs.submitted if job[0] == "deploys.run"]
    deploy = app.reads.deploys.get(payload["deploy_id"])
    app.services.adapters.locks.release(deploy.lease)  # it ran out while the job waited (a long queue, a paused worker)
    app.services.dispatcher.run_job(name, payload)
    notice = posted(app, "lost its deploy lock before it started")
    assert "its result was not recorded" in notice.seen()
    assert not [m for m in emulator.in_channel("C0DEPLOYS") if "Starting deployment" in m.seen()]
    assert app.reads.deploys.get(deploy.id).state.value == "lock_lost"
    assert not provider_running(app) and deployed_log(state_dir) == []


def test_a_rollback_that_loses_its_lock_is_published_as_a_failed_rollback(app: Bot, state_dir: Path) -> None:
    (state_dir / "go").touch()
    for version in ("v2.0.0", "v2.1.0"):
        app.command(f"deploy {version} to staging")
        posted(app, f"✅ Deployment of {version} to staging completed")
    (state_dir / "go").unlink()
    app.command('rollback api staging --reason "errors"')
    posted(app, "Rolling back api to v2.0.0 in staging")
    eventually(lambda: app.audit_actions().count(("opsbot", "deploy.provider_call", "started")) == 3)
    app.command('unlock api staging --reason "stuck"', user="U0ADMIN")
    posted(app, "lost its deploy lock while it ran")
    events = app.services.adapters.events.events  # type: ignore[attr-defined]
    eventually(lambda: events[-1].kind != "rollback.started")  # published right after the announcement
    assert (events[-1].kind, events[-1].summary) == (
        "rollback.failed",
        "rollback of api to v2.0.0 in staging lost its lock while it ran",
    )


def test_a_new_deploy_after_a_force_unlock_runs_once_the_old_run_has_stopped(app: Bot, state_dir: Path) -> None:
    app.command("deploy v2.0.0 to staging", user="U0DEV")
    posted(app, "🚀 Starting deployment of v2.0.0 to staging")
    eventually(lambda: provider_running(app))
    app.command('unlock api staging --reason "stuck"', user="U0ADMIN")
    posted(app, "lost its deploy lock while it ran")
    app.command("deploy v2.0.1 to staging", user="U0DEV2")
    (state_dir / "go").touch()
    posted(app, "✅ Deployment of v2.0.1 to staging completed")
    states = {d.version: d.state.value for d in app.reads.deploys.history("api", "staging", 5)}  # type: ignore[union-attr]
    assert states == {"v2.0.0": "lock_lost", "v2.0.1": "succeeded"}
    assert [line.split()[:3] for line in deployed_log(state_dir)] == [["api", "staging", "v2.0.1"]]


def test_the_database_keeps_a_target_to_one_deploy_when_redis_forgot_its_lock(
    emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str, config: OpsConfig, state_dir: Path
) -> None:
    jobs = FakeJobs()  # the first deploy's run waits in the queue
    app = make_app(emulator, pg_url, redis_client, redis_prefix, config, jobs=jobs)
    app.command("deploy v2.0.0 to staging", user="U0DEV")
    first = app.reads.deploys.history("api", "staging", 1)[0]  # type: ignore[union-attr]
    redis_client.delete(*redis_client.keys(f"{redis_prefix}*lock*"))  # a Redis failover lost every lock
    assert app.services.adapters.locks.held() == []
    refused = app.command("deploy v2.0.1 to staging", user="U0DEV2").seen()
    assert f"`api` in staging already has a deploy or rollback that is not over: `{first.id}`" in refused
    assert "cancel it with `/ops cancel <id>`" in refused
    assert app.services.adapters.locks.held() == []  # the refused request let go of the lock it took
    assert [d.version for d in app.reads.deploys.history("api", "staging", 5)] == ["v2.0.0"]  # type: ignore[union-attr]
    assert ("U0DEV2", "command.deploy", "conflict") in app.audit_actions()


def test_the_provider_timing_out_fails_the_deploy_and_releases_the_lock(
    emulator: SlackEmulator,
    pg_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    state_dir: Path,
    services_double: ServiceDouble,
) -> None:
    config = deploy_config(state_dir, services_double.base_url, command_args=("--sleep", "30"))
    config = config.model_copy(
        update={
            "services": {
                **config.services,
                "api": config.services["api"].model_copy(
                    update={"deploy": config.services["api"].deploy.model_copy(update={"timeout_seconds": 1})}
                ),
            }
        }
    )  # type: ignore[union-attr]
    app = make_app(emulator, pg_url, redis_client, redis_prefix, config)
    app.command("deploy v2.0.0 to staging")
    failed = posted(app, "❌ Deployment of v2.0.0 to staging failed", timeout=20)
    assert "timed out after 1s and was stopped" in failed.seen()
    assert "No locks are held" in app.command("locks").seen()
    assert deployed_log(state_dir) == []  # the program was stopped before it recorded anything


def test_an_expired_request_releases_the_lock_and_later_clicks_are_refused(
    emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str, config: OpsConfig
) -> None:
    clock = FrozenClock()
    app = make_app(emulator, pg_url, redis_client, redis_prefix, config, clock=clock)
    app.command("deploy v1.2.3 to production", user="U0DEV")
    request = approval_for(app, "Deploy v1.2.3 of api to production")
    first_seen = copy.deepcopy(request)
    assert app.services.adapters.locks.holder("deploy/api/production") is not None
    clock.advance(minutes=31)
    eventually(lambda: "Expired at 14:30" in app.emulator.find(request.ts).seen())
    eventually(lambda: app.reads.deploys.history("api", "production", 1)[0].state.value == "expired")  # type: ignore[union-attr]
    eventually(lambda: app.services.adapters.locks.holder("deploy/api/production") is None)
    replies = app.click(first_seen, "Approve", "U0APPROVER1")
    assert "already expired" in replies[-1]["text"]
    assert ("opsbot", "deploy.expired", "expired") in app.audit_actions()


def test_a_click_on_a_decided_request_is_refused_and_nothing_runs_twice(app: Bot, state_dir: Path) -> None:
    app.command("deploy v1.2.3 to production", user="U0DEV")
    request = approval_for(app, "Deploy v1.2.3 of api to production")
    as_drawn = copy.deepcopy(request)
    app.click(request, "Reject", "U0APPROVER1")
    assert "Rejected: Deploy v1.2.3" in app.emulator.find(request.ts).seen()
    assert "already rejected" in app.click(as_drawn, "Approve", "U0APPROVER2")[-1]["text"]
    assert app.services.adapters.locks.held() == [] and deployed_log(state_dir) == []
    assert app.reads.deploys.history("api", "production", 1)[0].state.value == "rejected"  # type: ignore[union-attr]


def test_cancel_withdraws_only_your_own_pending_request(app: Bot, state_dir: Path) -> None:
    app.command("deploy v1.2.3 to production", user="U0DEV")
    deploy_id = app.reads.deploys.history("api", "production", 1)[0].id  # type: ignore[union-attr]
    assert "only its requester or an admin" in app.command(f"cancel {deploy_id}", user="U0DEV2").seen()
    assert "You withdrew" in app.command(f"cancel {deploy_id}", user="U0DEV").seen()
    assert "already cancelled" in app.command(f"cancel {deploy_id}", user="U0DEV").seen()
    assert "Unknown deploy `d-00000000`" in app.command("cancel d-00000000").seen()
    assert app.services.adapters.locks.held() == []


def test_cancel_of_a_running_deploy_stops_its_provider_and_says_so(app: Bot, state_dir: Path) -> None:
    app.command("deploy v2.0.0 to staging", user="U0DEV")
    posted(app, "Starting deployment of v2.0.0")
    eventually(lambda: provider_running(app))
    deploy_id = app.reads.deploys.history("api", "staging", 1)[0].id  # type: ignore[union-attr]
    assert "only its requester or an admin" in app.command(f"cancel {deploy_id}", user="U0DEV2").seen()
    reply = app.command(f"cancel {deploy_id}", user="U0DEV").seen()
    assert f"Stopping {deploy_id}" in reply and "announced in the deployments channel" in reply
    stopped = posted(app, "was stopped by @U0DEV")
    assert "its result was not recorded" in stopped.seen() and "was stopped: cancelled by" in stopped.seen()
    (state_dir / "go").touch()
    assert deployed_log(state_dir) == []  # the deploy program was stopped before it deployed anything
    assert app.reads.deploys.get(deploy_id).state.value == "cancelled"  # type: ignore[union-attr]
    assert ("U0DEV", "deploy.stopped", "cancelled") in app.audit_actions()
    assert app.services.adapters.locks.held() == []
    assert "already cancelled" in app.command(f"cancel {deploy_id}", user="U0DEV").seen()


def test_a_deploy_runs_on_a_real_opsbot_worker_through_rq(
    emulator: SlackEmulator,
    pg_url: str,
    redis_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    state_dir: Path,
    services_double: ServiceDouble,
    tmp_path: Path,
) -> None:
    config = deploy_config(state_dir, services_double.base_url)
    app = Bot(
        emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=config, redis_url=redis_url
    )
    reply = app.command("deploy v3.0.0 to staging")
    assert "queued" in reply.seen()
    assert deployed_log(state_dir) == []  # nothing runs in the request: the worker has not started yet
    with app.worker(tmp_path):
        done = posted(app, "✅ Deployment of v3.0.0 to staging completed", timeout=30)
    assert [line.split()[:3] for line in deployed_log(state_dir)] == [["api", "staging", "v3.0.0"]]
    assert ("opsbot", "job.deploys.run", "ok") in app.audit_actions()
    assert "reporting v3.0.0" in done.seen()  # the worker process's own health engine checked the service double


def test_a_request_whose_lock_was_broken_does_not_start_once_approved(app: Bot, state_dir: Path) -> None:
    app.command("deploy v1.2.3 to production", user="U0DEV")
    request = approval_for(app, "Deploy v1.2.3 of api to production")
    app.command('unlock api production --reason "emergency hold"', user="U0ADMIN")
    app.click(request, "Approve", "U0APPROVER1")
    app.click(request, "Approve", "U0APPROVER2")
    notice = posted(app, "did not start")
    assert "its deploy lock was broken or ran out while it waited for approval" in notice.seen()
    assert app.reads.deploys.history("api", "production", 1)[0].state.value == "lock_lost"  # type: ignore[union-attr]
    assert deployed_log(state_dir) == []


class QueueDown(InProcessJobs):
    """Background jobs whose queue refuses deploys while ``down`` (Redis gone between the request and the last click)."""

    down = True

    def submit(self, name: str, payload: dict[str, Any], *, key: str | None = None) -> None:
        if name == "deploys.run" and self.down:
            raise Unavailable("Redis", "queueing deploys.run: ConnectionError")
        super().submit(name, payload, key=key)


def test_an_approved_deploy_whose_job_cannot_be_queued_starts_once_the_queue_is_back(
    emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str, config: OpsConfig, state_dir: Path
) -> None:
    jobs = QueueDown(SystemClock())
    app = make_app(emulator, pg_url, redis_client, redis_prefix, config, jobs=jobs)
    app.command("deploy v1.2.3 to production", user="U0DEV")
    request = approval_for(app, "Deploy v1.2.3 of api to production")
    app.click(request, "Approve", "U0APPROVER1")
    reply = app.click(request, "Approve", "U0APPROVER2")[-1]["text"]
    assert "That was the last approval needed; it is approved." in reply
    assert "The deploy starts as soon as the job queue (Redis) is back; nothing needs to be done again." in reply
    deploy = app.reads.deploys.history("api", "production", 1)[0]  # type: ignore[union-attr]
    assert deploy.state.value == "approved" and [lock.name for lock in app.services.adapters.locks.held()] == [
        "deploy/api/production"
    ]
    assert [e.kind for e in app.services.outbox.listing()] == ["job.submit"]
    assert not [m for m in emulator.in_channel("C0DEPLOYS") if "Starting deployment" in m.seen()]

    jobs.down = False  # the worker's deliverer tries again (a Retry-After-like backoff first)
    (state_dir / "go").touch()
    eventually(lambda: app.services.delivery.drain() >= 0 and deployed_log(state_dir), timeout=15)
    posted(app, "✅ Deployment of v1.2.3 to production completed")
    assert [line.split()[:3] for line in deployed_log(state_dir)] == [["api", "production", "v1.2.3"]]
    assert app.services.adapters.locks.held() == []


def test_a_request_whose_message_slack_refused_is_cancelled_by_the_reconciler_and_frees_the_lock(
    app: Bot, emulator: SlackEmulator, state_dir: Path
) -> None:
    emulator.fail("chat.postMessage", "channel_not_found")  # the deployments channel was archived or renamed
    reply = app.command("deploy v1.2.3 to production", user="U0DEV").seen()
    assert "Slack refused the approval request's message" in reply and "channel_not_found" in reply
    assert "opsbot cancels it and releases the lock within a minute" in reply
    deploy = app.reads.deploys.history("api", "production", 1)[0]  # type: ignore[union-attr]
    assert deploy.state.value == "requested"

    [repaired] = app.services.dispatcher.reconcile()
    assert repaired.startswith("cancelled the request 'Deploy v1.2.3 of api to production'")
    assert repaired.endswith("its message could not be posted (Slack refused it: channel_not_found)")
    assert app.reads.deploys.get(deploy.id).state.value == "cancelled"  # type: ignore[union-attr]
    assert app.services.adapters.locks.held() == []
    told = [m for m in emulator.visible() if m.channel == "D0DEV" and "was cancelled" in m.seen()]
    assert len(told) == 1 and "could not be posted in #C0DEPLOYS (Slack refused it: channel_not_found)" in told[0].seen()
    assert "Its lock is released" in told[0].seen()
    assert app.services.dispatcher.reconcile() == []
    assert deployed_log(state_dir) == []
    assert ("opsbot", "deploy.cancelled", "cancelled") in app.audit_actions()


def test_a_post_whose_answer_slack_lost_is_found_again_not_posted_twice(
    app: Bot, emulator: SlackEmulator, state_dir: Path
) -> None:
    (state_dir / "go").touch()
    emulator.fail_connection("chat.postMessage", after=True)  # Slack posts 🚀, the connection drops before the answer
    app.command("deploy v2.0.0 to staging")
    deploy = app.reads.deploys.history("api", "staging", 1)[0]  # type: ignore[union-attr]
    keyed = lambda what: [  # noqa: E731
        m for m in emulator.in_channel("C0DEPLOYS") if (m.metadata or {}).get("event_payload", {}).get("key") == deploy.key(what)
    ]
    eventually(lambda: app.services.delivery.drain() >= 0 and keyed("outcome"), timeout=15)
    assert len(keyed("started")) == 1 and len(keyed("outcome")) == 1
    assert len(emulator.in_channel("C0DEPLOYS")) == 2  # no twin of the 🚀 message
    assert emulator.calls_to("conversations.history")  # the retry looked for it before posting again


def test_a_deliverer_acting_on_a_copy_read_before_another_attempt_posts_no_twin(
    app: Bot, emulator: SlackEmulator, mocker: MockerFixture
) -> None:
    """Two deliverers (the worker's round, a command's thread): one read the row, the other attempted it meanwhile."""
    emulator.fail_connection("chat.postMessage", after=True)  # Slack posts the request, the answer is lost
    # The retry 4 s away (not 1-1.5 s): on a loaded machine the drain below once came after a 1 s backoff had passed.
    mocker.patch.object(OutboxDelivery, "_backoff", return_value=4.0)
    app.command("deploy v1.2.3 to production", user="U0DEV")
    table = OutboxTable(app.services.engine, SystemClock())
    [effect] = [e for e in table.listing(states=("pending",)) if e.key.startswith("approval:")]
    assert effect.attempts == 1  # the first attempt reached Slack; its retry waits for the backoff
    stale = dataclasses.replace(effect, attempts=0, last_error=None)  # what the other deliverer read before it
    mocker.patch.object(OutboxTable, "due", return_value=[stale])
    assert app.services.delivery.drain() == 0  # not due yet: the claim reads the row as it is now

    eventually(lambda: app.services.delivery.drain() == 1, timeout=20)  # once due, the claimed row says "attempted"
    requests = [m for m in emulator.in_channel("C0DEPLOYS") if "Approval needed" in m.seen()]
    assert len(requests) == 1  # found again by its metadata and edited, not posted twice


def test_an_admin_settles_an_unknown_outcome_by_hand_announced_and_audited(
    emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str, config: OpsConfig
) -> None:
    jobs = FakeJobs()
    app = make_app(emulator, pg_url, redis_client, redis_prefix, config, jobs=jobs)
    app.command("deploy v2.0.0 to staging", user="U0DEV")
    deploy = app.reads.deploys.history("api", "staging", 1)[0]  # type: ignore[union-attr]
    assert (
        "not unknown: only an unknown outcome is settled by hand"
        in app.command(f'deploy settle {deploy.id} succeeded --reason "checked"', user="U0ADMIN").seen()
    )
    # What the reconciler leaves when nobody can tell (its worker died and the service cannot be checked):
    assert autocommit(app.services.engine, "deploys").transition(
        deploy.id, frozenset({DeployState.APPROVED}), DeployState.UNKNOWN
    )

    assert "admin" in app.command(f'deploy settle {deploy.id} succeeded --reason "checked"', user="U0DEV").seen()
    assert (
        "Settle it as `succeeded` or `failed`"
        in app.command(f'deploy settle {deploy.id} fine --reason "x"', user="U0ADMIN").seen()
    )
    assert "--reason" in app.command(f"deploy settle {deploy.id} failed", user="U0ADMIN").seen()
    settled = app.command(f'deploy settle {deploy.id} failed --reason "v2.0.0 never reached the pods"', user="U0ADMIN")
    announced = posted(app, "settled")
    assert "v2.0.0 never reached the pods" in announced.seen() and "@U0ADMIN" in announced.seen()
    assert "was settled as *failed* by @U0ADMIN" in settled.seen()
    assert app.reads.deploys.get(deploy.id).state.value == "failed"  # type: ignore[union-attr]
    assert ("U0ADMIN", "deploy.settled", "failed") in app.audit_actions()
    assert app.services.adapters.locks.held() == []
    assert "not unknown" in app.command(f'deploy settle {deploy.id} succeeded --reason "again"', user="U0ADMIN").seen()


def test_a_post_whose_first_deliverer_died_after_slack_took_it_is_not_posted_twice(app: Bot, emulator: SlackEmulator) -> None:
    """A worker SIGKILLed right after Slack accepted a post, before recording it: the next deliverer finds it."""
    table = OutboxTable(app.services.engine, SystemClock())
    key = "test:died-mid-post"
    with app.services.engine.begin() as conn:
        outbox = SqlOutbox(conn, app.services.renderer, SystemClock(), timedelta(hours=1))
        outbox.post("C0DEPLOYS", Notice("The message a dying worker posted"), key=key, origin="test")
    [effect] = [e for e in table.listing(states=("pending",)) if e.key == key]
    claimed = table.claim(effect.id)  # the first deliverer takes it …
    assert claimed is not None and claimed.attempts == 1
    app.services.web_client.chat_postMessage(  # … Slack accepts its post …
        channel="C0DEPLOYS",
        text="The message a dying worker posted",
        metadata={"event_type": METADATA_TYPE, "event_payload": {"key": key}},
    )
    with app.services.engine.begin() as conn:  # … and it dies: its claim runs out
        conn.execute(
            sa.text("UPDATE outbox SET claimed_until = :past WHERE id = :id"),
            {"past": datetime(2000, 1, 1, tzinfo=UTC), "id": effect.id},
        )

    assert app.services.delivery.drain() >= 1
    posted = [m for m in emulator.in_channel("C0DEPLOYS") if "a dying worker posted" in m.seen()]
    assert len(posted) == 1  # found by its metadata and edited, not posted again
    assert table.message(key) == ("C0DEPLOYS", posted[0].ts)


def test_a_provider_call_recorded_by_a_commit_whose_answer_was_lost_still_runs_once(
    app: Bot, state_dir: Path, mocker: MockerFixture
) -> None:
    """The database took the run's "provider called" write, then the connection dropped before it answered."""
    (state_dir / "go").touch()
    claim = SqlDeployRepository.claim_provider_start
    answers: list[bool] = []

    def committed_then_lost(self: SqlDeployRepository, deploy_id: str, run_started_at: datetime, at: datetime) -> bool:
        if answers:
            answers.append(claim(self, deploy_id, run_started_at, at))
            return answers[-1]
        with app.services.engine.begin() as conn:  # the write lands …
            answers.append(claim(SqlDeployRepository(conn), deploy_id, run_started_at, at))
        raise Unavailable("The database", "connection lost")  # … and its answer does not

    mocker.patch.object(SqlDeployRepository, "claim_provider_start", committed_then_lost)
    app.command("deploy v2.0.0 to staging")
    eventually(lambda: app.services.delivery.drain() >= 0 and deployed_log(state_dir), timeout=20)
    posted(app, "✅ Deployment of v2.0.0 to staging completed")
    assert answers == [True, False]  # the retry was refused: the row already carried this run's own call
    assert [line.split()[:3] for line in deployed_log(state_dir)] == [["api", "staging", "v2.0.0"]]
