"""Deploy lock acquire + release (``RedisLockStore``: SET NX PX with an owner token, a fencing counter, the lock's
holder and purpose, the index of held locks, compare-and-delete release) beside the textbook minimum in raw redis-py:
``SET key token NX PX ttl`` then ``EVAL`` of a compare-and-delete script. Same Redis, same process, interleaved rounds.

Prints per-pair latency (p50, p99) and pairs per second, median over the rounds, and the ratio. The issue's target:
opsbot's pair at most 1.5× the raw one. Asserts nothing.

    python bench/locks.py [--pairs 3000] [--rounds 5] [--redis-url redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.adapters.redis.connection import connect
from bot.adapters.redis.locks import RedisLockStore
from bot.domain.shared.ports import SystemClock

COMPARE_AND_DELETE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end"


def raw_pair(client: redis.Redis, prefix: str) -> Callable[[int], None]:
    def pair(i: int) -> None:
        key, token = f"{prefix}raw:svc{i % 50}", secrets.token_hex(16)
        if not client.set(key, token, nx=True, px=600_000):
            raise SystemExit(f"raw: {key} was held")
        client.eval(COMPARE_AND_DELETE, 1, key, token)

    return pair


def opsbot_pair(store: RedisLockStore) -> Callable[[int], None]:
    def pair(i: int) -> None:
        lease = store.acquire(f"deploy/svc{i % 50}/production", holder="U0BENCH", purpose="bench", ttl_seconds=600)
        if lease is None:
            raise SystemExit("opsbot: the lock was held")
        store.release(lease)

    return pair


def measure(pair: Callable[[int], None], pairs: int) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, pairs per second) of ``pairs`` acquire + release pairs in a row."""
    latencies = []
    start = time.perf_counter()
    for i in range(pairs):
        t = time.perf_counter()
        pair(i)
        latencies.append(time.perf_counter() - t)
    wall = time.perf_counter() - start
    latencies.sort()
    return latencies[len(latencies) // 2] * 1000, latencies[int(len(latencies) * 0.99)] * 1000, pairs / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    prefix = f"opsbot-bench-locks:{secrets.token_hex(3)}:"
    client = connect(args.redis_url)
    raw = redis.Redis.from_url(args.redis_url, decode_responses=True)
    cases = {
        "raw redis-py: SET NX PX + EVAL": raw_pair(raw, prefix),
        "opsbot RedisLockStore": opsbot_pair(RedisLockStore(client, SystemClock(), prefix=prefix)),
    }
    for pair in cases.values():  # warm-up: connections, script cache
        measure(pair, 200)
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in cases}
    try:
        for _ in range(args.rounds):
            for name, pair in cases.items():
                results[name].append(measure(pair, args.pairs))
    finally:
        keys = list(client.scan_iter(f"{prefix}*"))
        if keys:
            client.delete(*keys)
    print(f"\n{args.pairs} acquire + release pairs per round, {args.rounds} rounds interleaved, median of the rounds")
    print(f"{'':<34} {'p50':>8} {'p99':>8} {'pairs/s':>9} {'p50 ×':>6}")
    print("-" * 70)
    base = statistics.median(r[0] for r in results["raw redis-py: SET NX PX + EVAL"])
    for name, rounds in results.items():
        p50 = statistics.median(r[0] for r in rounds)
        p99 = statistics.median(r[1] for r in rounds)
        rate = statistics.median(r[2] for r in rounds)
        print(f"{name:<34} {p50:>6.3f}ms {p99:>6.3f}ms {rate:>9.0f} {p50 / base:>5.2f}x")
    print("\nopsbot's acquire also takes a fencing token (INCR) and records holder, purpose and since (HSET + PEXPIRE)")
    print("and the index of held locks (SADD), in one Lua script; release checks the token and deletes in one script.")
    print("target (issue 14): opsbot ≤ 1.5× raw")


if __name__ == "__main__":
    main()
