"""Deploy locks in Redis: SET NX PX with an owner token, compare-and-set release and renewal in Lua, a fencing counter."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import redis

from bot.adapters.redis.connection import guard_redis
from bot.domain.locks.ports import Lease, LockInfo
from bot.domain.shared.ports import Clock

# KEYS: lock, meta, fence, index. ARGV: token, ttl_ms, holder, purpose, since, name.
ACQUIRE = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
local fence = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[2], 'holder', ARGV[3], 'purpose', ARGV[4], 'since', ARGV[5], 'fence', fence)
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[4], ARGV[6])
return fence
"""
# KEYS: lock, meta, index. ARGV: token, name.
RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SREM', KEYS[3], ARGV[2])
return 1
"""
# KEYS: lock, meta. ARGV: token, ttl_ms.
EXTEND = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
"""
# KEYS: lock, meta, index. ARGV: name. Returns the holder's metadata and remaining TTL, or false.
FORCE_RELEASE = """
local pttl = redis.call('PTTL', KEYS[1])
if pttl < 0 then redis.call('SREM', KEYS[3], ARGV[1]) return false end
local meta = redis.call('HGETALL', KEYS[2])
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
table.insert(meta, 'pttl')
table.insert(meta, tostring(pttl))
return meta
"""
# KEYS: index, then each lock's key and metadata key in turn. ARGV: the locks' names, in the same order.
# Returns, per name, {pttl, holder, purpose, since, fence} (a held lock), or {-2} (it expired: dropped from the index).
# One round trip and one reply for every lock, where a pipeline of HGETALL + PTTL per lock cost `/ops locks` about
# 7 ms of redis-py packing and parsing with 200 held (bench/command_cost.py).
HELD = """
local out = {}
for i, name in ipairs(ARGV) do
  local pttl = redis.call('PTTL', KEYS[2 * i])
  local meta = redis.call('HMGET', KEYS[2 * i + 1], 'holder', 'purpose', 'since', 'fence')
  if pttl < 0 or not meta[1] then
    redis.call('SREM', KEYS[1], name)
    out[i] = {-2}
  else
    out[i] = {pttl, meta[1], meta[2] or '', meta[3] or '', meta[4] or '0'}
  end
end
return out
"""


class RedisLockStore:
    """Locks whose holders can prove they still hold them, and whose order is fenced."""

    def __init__(self, client: redis.Redis, clock: Clock, prefix: str = "opsbot:") -> None:
        self._r = client
        self._clock = clock
        self._prefix = prefix
        self._acquire = client.register_script(ACQUIRE)
        self._release = client.register_script(RELEASE)
        self._extend = client.register_script(EXTEND)
        self._force = client.register_script(FORCE_RELEASE)
        self._held = client.register_script(HELD)

    def _keys(self, name: str) -> tuple[str, str, str, str]:
        p = self._prefix
        return f"{p}lock:{name}", f"{p}lock-meta:{name}", f"{p}lock-fence:{name}", f"{p}locks"

    @guard_redis
    def acquire(self, name: str, *, holder: str, purpose: str, ttl_seconds: float) -> Lease | None:
        lock, meta, fence_key, index = self._keys(name)
        token = secrets.token_hex(16)
        since = self._clock.now().isoformat()
        fence = self._acquire(
            keys=[lock, meta, fence_key, index], args=[token, int(ttl_seconds * 1000), holder, purpose, since, name]
        )
        return Lease(name, token, int(fence)) if fence else None

    @guard_redis
    def release(self, lease: Lease) -> bool:
        lock, meta, _, index = self._keys(lease.name)
        return bool(self._release(keys=[lock, meta, index], args=[lease.token, lease.name]))

    @guard_redis
    def extend(self, lease: Lease, ttl_seconds: float) -> bool:
        lock, meta, _, _ = self._keys(lease.name)
        return bool(self._extend(keys=[lock, meta], args=[lease.token, int(ttl_seconds * 1000)]))

    @guard_redis
    def is_current(self, lease: Lease) -> bool:
        lock, meta, _, _ = self._keys(lease.name)
        with self._r.pipeline(transaction=True) as pipe:
            pipe.get(lock)
            pipe.hget(meta, "fence")
            token, fence = pipe.execute()
        return token == lease.token and fence is not None and int(fence) == lease.fence

    @guard_redis
    def holder(self, name: str) -> LockInfo | None:
        lock, meta, _, _ = self._keys(name)
        with self._r.pipeline(transaction=True) as pipe:
            pipe.hgetall(meta)
            pipe.pttl(lock)
            fields, pttl = pipe.execute()
        return self._info(name, fields, pttl)

    @guard_redis
    def held(self) -> list[LockInfo]:
        index = self._keys("")[3]
        names: list[str] = sorted(self._r.smembers(index))  # type: ignore[arg-type]  # decode_responses: str members
        if not names:
            return []
        keys = [index]
        for name in names:
            lock, meta, _, _ = self._keys(name)
            keys += (lock, meta)
        now = self._clock.now()
        infos: list[LockInfo] = []
        for name, reply in zip(names, self._held(keys=keys, args=names), strict=True):
            if len(reply) == 5:
                pttl, holder, purpose, since, fence = reply
                infos.append(
                    LockInfo(
                        name=name,
                        holder=holder,
                        purpose=purpose,
                        since=datetime.fromisoformat(since) if since else now,
                        expires_at=now + timedelta(milliseconds=int(pttl)),
                        fence=int(fence),
                    )
                )
        return infos

    @guard_redis
    def force_release(self, name: str) -> LockInfo | None:
        lock, meta, _, index = self._keys(name)
        reply = self._force(keys=[lock, meta, index], args=[name])
        if not reply:
            return None
        fields = dict(zip(reply[::2], reply[1::2], strict=True))
        return self._info(name, fields, int(fields.pop("pttl")))

    def _info(self, name: str, fields: dict[str, str], pttl: int) -> LockInfo | None:
        if not fields or pttl is None or pttl < 0:
            return None
        return LockInfo(
            name=name,
            holder=fields.get("holder", "?"),
            purpose=fields.get("purpose", ""),
            since=datetime.fromisoformat(fields["since"]) if "since" in fields else self._clock.now(),
            expires_at=self._clock.now() + timedelta(milliseconds=pttl),
            fence=int(fields.get("fence", 0)),
        )
