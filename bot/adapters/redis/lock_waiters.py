"""Who asked to be told when a deploy lock is free: a Redis list per lock, deduplicated by a set."""

from __future__ import annotations

import redis

from bot.adapters.redis.connection import guard_redis

WAIT_TTL_SECONDS = 24 * 3600  # nobody wants a "free now" message about yesterday's lock

# KEYS: list, set. ARGV: user, ttl. Returns the user's 1-based place in line.
ADD = """
if redis.call('SADD', KEYS[2], ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[1], ARGV[1])
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
local line = redis.call('LRANGE', KEYS[1], 0, -1)
for i, user in ipairs(line) do
  if user == ARGV[1] then return i end
end
return 0
"""
# KEYS: list, set. Returns everyone in line, in order, and empties the line.
TAKE_ALL = """
local line = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1], KEYS[2])
return line
"""


class RedisLockWaiters:
    def __init__(self, client: redis.Redis, prefix: str = "opsbot:") -> None:
        self._prefix = prefix
        self._add = client.register_script(ADD)
        self._take_all = client.register_script(TAKE_ALL)

    def _keys(self, name: str) -> list[str]:
        return [f"{self._prefix}lock-waiters:{name}", f"{self._prefix}lock-waiters-set:{name}"]

    @guard_redis
    def add(self, name: str, user: str) -> int:
        return int(self._add(keys=self._keys(name), args=[user, WAIT_TTL_SECONDS]))

    @guard_redis
    def take_all(self, name: str) -> list[str]:
        return [str(user) for user in self._take_all(keys=self._keys(name))]
