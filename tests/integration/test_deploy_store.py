"""The deploy store on SQLite and PostgreSQL, and the lock waiters on real Redis."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import redis

from bot.adapters.redis.lock_waiters import RedisLockWaiters
from bot.adapters.sql.engine import create_db_engine
from bot.domain.deploys.model import Deploy, DeployKind, DeployState
from bot.domain.deploys.ports import TargetBusy
from tests.support import autocommit

T0 = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


def a_deploy(deploy_id: str, version: str, state: DeployState, minutes: int, **changes: object) -> Deploy:
    base = Deploy(
        id=deploy_id,
        kind=DeployKind.DEPLOY,
        service="api",
        environment="production",
        version=version,
        requester="U0DEV",
        reason="r",
        state=state,
        requested_at=T0 + timedelta(minutes=minutes),
        started_at=T0 + timedelta(minutes=minutes, seconds=30),
        lock_name="deploy/api/production",
        lock_token="t" + deploy_id,
        lock_fence=minutes + 1,
        approvers=["U0APPROVER1"],
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_deploy_reads_back_as_written(db_url: str) -> None:
    store = autocommit(create_db_engine(db_url), "deploys")
    written = a_deploy("d-00000001", "v1.2.3", DeployState.REQUESTED, 0, hotfix=True, previous_version="v1.2.2")
    store.create(written)
    assert store.get("d-00000001") == written
    assert store.get("d-nope") is None


def test_only_one_of_many_concurrent_transitions_wins(db_url: str) -> None:
    store = autocommit(create_db_engine(db_url), "deploys")
    store.create(a_deploy("d-00000001", "v1.2.3", DeployState.APPROVED, 0))
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(
            pool.map(
                lambda _: store.transition("d-00000001", frozenset({DeployState.APPROVED}), DeployState.RUNNING, started_at=T0),
                range(10),
            )
        )
    assert sum(r is not None for r in results) == 1
    assert store.get("d-00000001").state is DeployState.RUNNING  # type: ignore[union-attr]


def test_last_ran_and_last_good_pick_the_rollback_target(db_url: str) -> None:
    store = autocommit(create_db_engine(db_url), "deploys")
    store.create(a_deploy("d-00000001", "v1.0.0", DeployState.SUCCEEDED, 0))
    store.create(a_deploy("d-00000002", "v1.1.0", DeployState.ROLLED_BACK, 10))
    store.create(a_deploy("d-00000003", "v1.2.2", DeployState.SUCCEEDED, 20))
    store.create(a_deploy("d-00000004", "v1.2.3", DeployState.FAILED, 30))
    store.create(a_deploy("d-00000005", "v1.2.4", DeployState.REQUESTED, 40, started_at=None))
    current = store.last_ran("api", "production")
    assert current is not None and current.id == "d-00000004"
    assert current.started_at is not None
    good = store.last_good("api", "production", before=current.started_at, other_than=current.version)
    assert good is not None and good.version == "v1.2.2"
    older = store.last_good("api", "production", before=good.started_at, other_than=good.version)  # type: ignore[arg-type]
    assert older is not None and older.version == "v1.0.0"  # the rolled-back v1.1.0 is skipped
    assert store.last_ran("api", "staging") is None


def test_abandoning_marks_only_requests_and_queued_deploys_with_an_older_fence(db_url: str) -> None:
    store = autocommit(create_db_engine(db_url), "deploys")
    store.create(a_deploy("d-00000001", "v1.2.2", DeployState.SUCCEEDED, 0))
    store.create(a_deploy("d-00000002", "v1.2.3", DeployState.REQUESTED, 5))
    lost = store.abandon_older("deploy/api/production", 9, T0 + timedelta(hours=1))
    assert [d.id for d in lost] == ["d-00000002"] and lost[0].state is DeployState.LOCK_LOST
    assert store.get("d-00000001").state is DeployState.SUCCEEDED  # type: ignore[union-attr]
    assert store.abandon_older("deploy/api/production", 3, T0 + timedelta(hours=1)) == []  # a newer fence is not older


def test_a_running_deploy_is_never_abandoned_and_the_database_refuses_a_second_live_one(db_url: str) -> None:
    """A vanished Redis key (TTL, failover, eviction) lets a new request take the lock: the database still says no."""
    store = autocommit(create_db_engine(db_url), "deploys")
    store.create(a_deploy("d-00000002", "v1.2.3", DeployState.RUNNING, 5))
    assert store.abandon_older("deploy/api/production", 9, T0 + timedelta(hours=1)) == []
    with pytest.raises(TargetBusy, match=r"`d-00000002` \(deploy of v1\.2\.3, running"):
        store.create(a_deploy("d-00000003", "v1.2.4", DeployState.REQUESTED, 9))
    assert store.get("d-00000002").state is DeployState.RUNNING  # type: ignore[union-attr]
    assert store.get("d-00000003") is None
    store.create(a_deploy("d-00000004", "v1.2.4", DeployState.REQUESTED, 9, environment="staging"))  # another target is free


def test_history_is_newest_first_and_filtered(db_url: str) -> None:
    store = autocommit(create_db_engine(db_url), "deploys")
    store.create(a_deploy("d-00000001", "v1.0.0", DeployState.SUCCEEDED, 0))
    store.create(a_deploy("d-00000002", "v1.1.0", DeployState.FAILED, 10, environment="staging"))
    store.create(a_deploy("d-00000003", "v1.2.0", DeployState.SUCCEEDED, 20))
    assert [d.id for d in store.history(None, None, 10)] == ["d-00000003", "d-00000002", "d-00000001"]
    assert [d.id for d in store.history("api", "production", 1)] == ["d-00000003"]
    assert [d.id for d in store.history(None, "staging", 10)] == ["d-00000002"]


def test_freezes_are_active_until_they_end_or_are_lifted(db_url: str) -> None:
    store = autocommit(create_db_engine(db_url), "deploys")
    store.add_freeze("environment", "production", "launch", "U0ADMIN", T0, T0 + timedelta(hours=2))
    store.add_freeze("service", "api", "migration", "U0ADMIN", T0, T0 + timedelta(minutes=30))
    assert [f.target for f in store.active_freezes(T0 + timedelta(minutes=10))] == ["api", "production"]
    assert [f.target for f in store.active_freezes(T0 + timedelta(hours=1))] == ["production"]
    assert store.lift_freezes("environment", "production", T0 + timedelta(hours=1)) == 1
    assert store.active_freezes(T0 + timedelta(hours=1, seconds=1)) == []
    assert store.lift_freezes("environment", "production", T0 + timedelta(hours=1)) == 0


def test_lock_waiters_come_out_in_the_order_they_asked_each_once(redis_client: redis.Redis, redis_prefix: str) -> None:
    waiters = RedisLockWaiters(redis_client, redis_prefix)
    assert [waiters.add("deploy/api/production", user) for user in ("U0B", "U0A", "U0B", "U0C")] == [1, 2, 1, 3]
    assert waiters.add("deploy/api/staging", "U0A") == 1
    assert waiters.take_all("deploy/api/production") == ["U0B", "U0A", "U0C"]
    assert waiters.take_all("deploy/api/production") == []
    assert waiters.add("deploy/api/production", "U0B") == 1  # a new line after the release


def test_a_run_requeued_by_the_reconciler_can_no_longer_call_the_provider(db_url: str) -> None:
    """A slow run (not dead) whose deploy the reconciler requeued must not call the provider after the new run does."""
    store = autocommit(create_db_engine(db_url), "deploys")
    store.create(a_deploy("d-00000001", "v1.2.3", DeployState.APPROVED, 0))
    first = store.transition("d-00000001", frozenset({DeployState.APPROVED}), DeployState.RUNNING, started_at=T0)
    assert first is not None and first.started_at is not None

    assert store.requeue_unstarted("d-00000001") is not None  # its heartbeat went stale before the provider call
    second = store.transition(
        "d-00000001", frozenset({DeployState.APPROVED}), DeployState.RUNNING, started_at=T0 + timedelta(seconds=5)
    )
    assert second is not None and second.started_at is not None

    assert store.claim_provider_start("d-00000001", first.started_at, T0 + timedelta(seconds=6)) is False  # the old run
    assert store.claim_provider_start("d-00000001", second.started_at, T0 + timedelta(seconds=6)) is True
    assert store.claim_provider_start("d-00000001", second.started_at, T0 + timedelta(seconds=7)) is False  # once
    assert store.requeue_unstarted("d-00000001") is None  # the provider was called: settle it, never run it again
    assert store.get("d-00000001").provider_started_at == T0 + timedelta(seconds=6)  # type: ignore[union-attr]
