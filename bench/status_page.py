"""The public status page under a crowd: latency and throughput of /status.json and /status, with the 5-second
snapshot cache (what `opsbot serve` runs) beside the baseline without it (every request reads Redis and the database).

In one process, on loopback: real Redis, a real database (SQLite file or a fresh PostgreSQL database), the WSGI app on
a threaded server, 3 listed services with watch states, 3 open incidents with 5 public updates each. Prints figures;
asserts nothing.

    python bench/status_page.py                        # SQLite
    python bench/status_page.py --database postgresql --requests 400
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.deploy_flow import database, figures  # noqa: E402
from bot.adapters.status_page import StatusPageApp, StatusPageRenderer  # noqa: E402
from bot.config import parse_config  # noqa: E402
from bot.domain.health.rules import Level  # noqa: E402
from tests.status_kit import START, fixed_clock, serving_app, set_watch, status_config  # noqa: E402
from tests.support import Bot, config_data, start_emulator  # noqa: E402


def populate(bot: Bot) -> None:
    set_watch(bot, "api", "production", Level.WARNING, START)
    set_watch(bot, "web", "production", Level.OK, START)
    for n in range(3):
        reply = bot.command(f'incident declare P1 Bench incident {n} --service api --impact "bench"')
        channel = next(c for c in bot.emulator.channels.values() if c.name.startswith("inc-") and c.name.endswith(f"-{n}"))
        assert "Declared" in reply.seen(), reply.seen()
        for u in range(5):
            bot.command(
                f'incident update identified "internal {u}" --next 30m --public "Public update {u} of incident {n}."',
                channel=channel.id,
            )


def run(base: str, path: str, requests: int, clients: int) -> tuple[list[float], float]:
    """Latencies (ms) of ``requests`` GETs spread over ``clients`` threads, and the requests per second."""

    def one(client: httpx.Client) -> float:
        started = time.perf_counter()
        response = client.get(base + path)
        assert response.status_code == 200
        return (time.perf_counter() - started) * 1000

    with httpx.Client(timeout=30) as client:
        one(client)  # warm up: connections, template compilation
        began = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            latencies = list(pool.map(lambda _: one(client), range(requests)))
        elapsed = time.perf_counter() - began
    return latencies, requests / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="opsbot-bench-"))
    url, drop = database(args.database, workdir)
    config = parse_config(config_data(**status_config()))
    emulator = start_emulator(config)
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0", decode_responses=True)
    prefix = f"opsbot-bench:{secrets.token_hex(4)}:"
    bot = Bot(emulator=emulator, db_url=url, redis_client=client, prefix=prefix, config=config, clock=fixed_clock())
    try:
        populate(bot)
        renderer = StatusPageRenderer()
        print(f"status page, {args.database}, {args.requests} requests from {args.clients} concurrent clients")
        for label, max_age in (("no cache (baseline)", 0.0), ("5 s snapshot (serve)", 5.0)):
            app = StatusPageApp(bot.services.status_board, renderer, max_age=max_age)
            with serving_app(app) as base:
                for path in ("/status.json", "/status"):
                    latencies, rate = run(base, path, args.requests, args.clients)
                    print(
                        f"{figures(f'{label} {path}', latencies)}   {rate:7.0f} req/s   mean {statistics.fmean(latencies):6.1f} ms"
                    )
    finally:
        bot.close()
        emulator.stop()
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
        drop()


if __name__ == "__main__":
    main()
