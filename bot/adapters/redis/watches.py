"""Health watch state in Redis: a lease per watch, and state that only the lease holder may write.

The lease is SET NX PX with a random token and a fence number (INCR); ``save`` is a Lua script that
writes the state only while the lock still holds the caller's token, so the check and the write are
one atomic step. A replica that stalled past its lease gets ``False`` and announces nothing.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

import redis

from bot.adapters.redis.connection import guard_redis
from bot.domain.locks.ports import Lease
from bot.domain.shared.ports import Clock

# KEYS: lock, fence. ARGV: token, ttl_ms. Returns the new fence, or false when the lease is held.
LEASE = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
return redis.call('INCR', KEYS[2])
"""
# KEYS: lock, state. ARGV: token, state json.
SAVE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
return 1
"""
# KEYS: lock. ARGV: token.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisWatchStore:
    """``WatchStore`` on the shared Redis; keys live under ``<prefix>health:``."""

    def __init__(self, client: redis.Redis, clock: Clock, prefix: str = "opsbot:") -> None:
        self._r = client
        self._clock = clock
        self._prefix = f"{prefix}health:"
        self._lease = client.register_script(LEASE)
        self._save = client.register_script(SAVE)
        self._release = client.register_script(RELEASE)

    def _key(self, kind: str, watch: str) -> str:
        return f"{self._prefix}{kind}:{watch}"

    @guard_redis
    def lease(self, watch: str, ttl_seconds: float) -> Lease | None:
        token = secrets.token_hex(16)
        fence = self._lease(keys=[self._key("lease", watch), self._key("fence", watch)], args=[token, int(ttl_seconds * 1000)])
        return Lease(watch, token, int(fence)) if fence else None

    @guard_redis
    def release(self, lease: Lease) -> None:
        self._release(keys=[self._key("lease", lease.name)], args=[lease.token])

    @guard_redis
    def load(self, watch: str) -> dict[str, Any] | None:
        raw = self._r.get(self._key("state", watch))
        return json.loads(raw) if raw else None

    @guard_redis
    def save(self, lease: Lease, data: dict[str, Any]) -> bool:
        keys = [self._key("lease", lease.name), self._key("state", lease.name)]
        return bool(self._save(keys=keys, args=[lease.token, json.dumps(data)]))

    @guard_redis
    def silence(self, watch: str, until: datetime, by: str) -> None:
        seconds = max(int((until - self._clock.now()).total_seconds()), 1)
        # Kept a day past its end so a late tick still sees it ended (and when), then cleaned up.
        self._r.set(self._key("silence", watch), json.dumps({"until": until.isoformat(), "by": by}), ex=seconds + 86400)

    @guard_redis
    def silence_of(self, watch: str) -> tuple[datetime, str] | None:
        raw = self._r.get(self._key("silence", watch))
        if not raw:
            return None
        data = json.loads(raw)
        return datetime.fromisoformat(data["until"]), str(data["by"])
