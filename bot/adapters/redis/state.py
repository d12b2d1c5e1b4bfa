"""Short-lived server-side state in Redis, behind opaque ids: what a button may carry instead of the data itself."""

from __future__ import annotations

import json
import secrets
from typing import Any

import redis

from bot.adapters.redis.connection import guard_redis


class RedisState:
    """Short-lived JSON values behind random ids, for button payloads that must stay opaque."""

    def __init__(self, client: redis.Redis, prefix: str = "opsbot:") -> None:
        self._r = client
        self._prefix = prefix

    @guard_redis
    def put(self, kind: str, data: dict[str, Any], ttl_seconds: int) -> str:
        key = secrets.token_urlsafe(12)
        self._r.set(f"{self._prefix}state:{kind}:{key}", json.dumps(data), ex=ttl_seconds)
        return key

    @guard_redis
    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        if not key or len(key) > 64:
            return None
        raw = self._r.get(f"{self._prefix}state:{kind}:{key}")
        return json.loads(raw) if raw else None
