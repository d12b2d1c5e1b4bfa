"""Deploy locks against a real Redis server: ownership, expiry, fencing, and a Redis that is gone."""

from __future__ import annotations

import time

import pytest
import redis

from bot.adapters.redis.connection import connect
from bot.adapters.redis.locks import RedisLockStore
from bot.adapters.redis.state import RedisState
from bot.domain.shared.errors import Unavailable
from tests.support import FrozenClock


@pytest.fixture
def locks(redis_client: redis.Redis, redis_prefix: str) -> RedisLockStore:
    return RedisLockStore(redis_client, FrozenClock(), redis_prefix)


def test_only_one_holder_at_a_time(locks: RedisLockStore) -> None:
    first = locks.acquire("deploy/api/production", holder="U0DEV", purpose="v1.2.3", ttl_seconds=30)
    assert first is not None
    assert locks.acquire("deploy/api/production", holder="U0DEV2", purpose="v1.2.4", ttl_seconds=30) is None
    held = locks.holder("deploy/api/production")
    assert held is not None and (held.holder, held.purpose, held.fence) == ("U0DEV", "v1.2.3", first.fence)
    assert 29 <= (held.expires_at - held.since).total_seconds() <= 30


def test_a_stale_holder_cannot_release_the_next_holders_lock(locks: RedisLockStore) -> None:
    stale = locks.acquire("deploy/api/staging", holder="U0DEV", purpose="v1", ttl_seconds=0.2)
    assert stale is not None
    time.sleep(0.35)
    fresh = locks.acquire("deploy/api/staging", holder="U0DEV2", purpose="v2", ttl_seconds=30)
    assert fresh is not None and fresh.fence > stale.fence
    assert locks.release(stale) is False
    assert locks.extend(stale, 30) is False
    assert locks.is_current(stale) is False and locks.is_current(fresh) is True
    assert locks.holder("deploy/api/staging").holder == "U0DEV2"  # type: ignore[union-attr]


def test_expired_locks_leave_the_listing(locks: RedisLockStore) -> None:
    locks.acquire("deploy/api/staging", holder="U0DEV", purpose="short", ttl_seconds=0.2)
    locks.acquire("deploy/web/staging", holder="U0DEV", purpose="long", ttl_seconds=30)
    time.sleep(0.35)
    assert [info.name for info in locks.held()] == ["deploy/web/staging"]


def test_extend_keeps_the_lock_alive(locks: RedisLockStore) -> None:
    lease = locks.acquire("deploy/api/staging", holder="U0DEV", purpose="run", ttl_seconds=0.3)
    assert lease is not None
    for _ in range(3):
        time.sleep(0.15)
        assert locks.extend(lease, 0.3)
    assert locks.is_current(lease)


def test_release_frees_the_lock_for_the_next_deploy(locks: RedisLockStore) -> None:
    lease = locks.acquire("deploy/api/staging", holder="U0DEV", purpose="v1", ttl_seconds=30)
    assert lease is not None and locks.release(lease) is True
    assert locks.holder("deploy/api/staging") is None
    nxt = locks.acquire("deploy/api/staging", holder="U0DEV2", purpose="v2", ttl_seconds=30)
    assert nxt is not None and nxt.fence == lease.fence + 1


def test_force_release_reports_who_held_it(locks: RedisLockStore) -> None:
    lease = locks.acquire("deploy/api/production", holder="U0DEV", purpose="v9", ttl_seconds=30)
    released = locks.force_release("deploy/api/production")
    assert released is not None and released.holder == "U0DEV" and released.fence == lease.fence  # type: ignore[union-attr]
    assert locks.force_release("deploy/api/production") is None
    assert locks.is_current(lease) is False  # type: ignore[arg-type]


def test_state_behind_opaque_ids(redis_client: redis.Redis, redis_prefix: str) -> None:
    state = RedisState(redis_client, redis_prefix)
    key = state.put("page", {"before": 42}, ttl_seconds=60)
    assert state.get("page", key) == {"before": 42}
    assert state.get("page", "forged-id") is None
    assert state.get("other-kind", key) is None


def test_an_unreachable_redis_is_a_clear_unavailable_error() -> None:
    locks = RedisLockStore(connect("redis://127.0.0.1:1/0"), FrozenClock(), "x:")
    with pytest.raises(Unavailable, match="Redis is unreachable right now; nothing was changed"):
        locks.acquire("deploy/api/production", holder="U0DEV", purpose="v1", ttl_seconds=30)
