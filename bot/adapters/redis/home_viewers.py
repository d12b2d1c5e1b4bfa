"""Home's viewers in Redis: who opened Home lately (a sorted set by time), each person's publish window
(``SET NX PX``: at most one automatic ``views.publish`` per window), and the notice answering their last click."""

from __future__ import annotations

import json
from datetime import datetime

import redis

from bot.adapters.redis.connection import guard_redis
from bot.domain.home.model import HomeNotice

VIEWERS_KEPT = 10_000  # the sorted set keeps the newest this many viewers, whatever happens to the cleanup


class RedisHomeViewers:
    """``HomeViewers`` on Redis; every key under ``<prefix>home:``."""

    def __init__(self, client: redis.Redis, prefix: str = "opsbot:") -> None:
        self._r = client
        self._viewers = f"{prefix}home:viewers"
        self._prefix = f"{prefix}home:"

    @guard_redis
    def seen(self, user: str, at: datetime) -> None:
        pipe = self._r.pipeline(transaction=False)
        pipe.zadd(self._viewers, {user: at.timestamp()})
        pipe.zremrangebyrank(self._viewers, 0, -VIEWERS_KEPT - 1)
        pipe.execute()

    @guard_redis
    def recent(self, since: datetime) -> list[str]:
        self._r.zremrangebyscore(self._viewers, "-inf", f"({since.timestamp()}")
        return [str(user) for user in self._r.zrange(self._viewers, 0, -1)]

    @guard_redis
    def claim(self, user: str, seconds: float) -> bool:
        return bool(self._r.set(self._window(user), "1", nx=True, px=max(int(seconds * 1000), 1)))

    @guard_redis
    def hold(self, user: str, seconds: float) -> None:
        self._r.set(self._window(user), "1", px=max(int(seconds * 1000), 1))

    @guard_redis
    def release(self, user: str) -> None:
        self._r.delete(self._window(user))

    @guard_redis
    def window_left(self, user: str) -> float:
        left = int(self._r.pttl(self._window(user)))  # -2: no key, -1: no expiry (never set by us)
        return max(left, 0) / 1000

    @guard_redis
    def leave_notice(self, user: str, notice: HomeNotice, seconds: int) -> None:
        self._r.set(f"{self._prefix}notice:{user}", json.dumps({"icon": notice.icon, "text": notice.text}), ex=seconds)

    @guard_redis
    def notice(self, user: str) -> HomeNotice | None:
        raw = self._r.get(f"{self._prefix}notice:{user}")
        if not raw:
            return None
        data = json.loads(raw)
        return HomeNotice(str(data["icon"]), str(data["text"]))

    @guard_redis
    def board_version(self) -> int:
        return int(self._r.get(f"{self._prefix}version") or 0)

    @guard_redis
    def bump_board_version(self) -> None:
        self._r.incr(f"{self._prefix}version")

    def _window(self, user: str) -> str:
        return f"{self._prefix}window:{user}"
