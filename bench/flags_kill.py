"""How fast a kill is: `/ops flag kill` through the real app into the SQL table and into Unleash, and until an
application using Unleash's Python client sees it. Prints figures; asserts nothing.

Needs what the tests need: Redis, PostgreSQL and a running Unleash (scripts/unleash-server.sh start).
Run from the repository root: python bench/flags_kill.py [rounds]
"""

from __future__ import annotations

import secrets
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.adapters.sql.engine import upgrade
from bot.domain.shared.policy import Actor
from tests.conftest import DEFAULT_PG_URL, DEFAULT_REDIS_URL, _admin, _with_database
from tests.flagkit import AppSees, UnleashAdmin, create_flag_table
from tests.support import Bot, make_config, start_emulator

UNLEASH = "http://127.0.0.1:4247"


def figures(label: str, samples: list[float]) -> None:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[max(0, int(len(ms) * 0.95) - 1)]
    print(f"{label:<58} n={len(ms):<3} median {statistics.median(ms):7.1f} ms   p95 {p95:7.1f} ms   max {ms[-1]:7.1f} ms")


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main(rounds: int) -> None:
    names = [f"opsbot_bench_{secrets.token_hex(4)}", f"opsbot_bench_app_{secrets.token_hex(4)}"]
    for name in names:
        _admin(DEFAULT_PG_URL, f'CREATE DATABASE "{name}"')
    try:
        opsbot_db, app_db = (_with_database(DEFAULT_PG_URL, n) for n in names)
        upgrade(opsbot_db)
        create_flag_table(app_db, {"checkout.new-flow": (True, False, 30)})
        admin = UnleashAdmin(UNLEASH)
        flag = admin.create("bench", production=True, development=True)
        run(rounds, opsbot_db, app_db, admin, flag)
    finally:
        for name in names:
            _admin(DEFAULT_PG_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(rounds: int, opsbot_db: str, app_db: str, admin: UnleashAdmin, flag: str) -> None:
    base = {"rollout_max_step": 25}
    sql = {"type": "sql", "databases": {"staging": {"url": app_db}}}
    unleash = {"type": "unleash", "url": UNLEASH, "environments": {"staging": "development", "production": "production"}}
    client = redis.Redis.from_url(DEFAULT_REDIS_URL, decode_responses=True)
    for label, provider, name in (("sql (PostgreSQL app database)", sql, "checkout.new-flow"), ("unleash", unleash, flag)):
        config = make_config(flags={**base, "provider": provider, "default_environment": "staging"})
        emulator = start_emulator(config)
        bot = Bot(
            emulator=emulator, db_url=opsbot_db, redis_client=client, prefix=f"bench:{secrets.token_hex(3)}:", config=config
        )
        kills, unkills, domain = [], [], []
        for _ in range(rounds):
            kills.append(timed(lambda b=bot, n=name: b.command(f"flag kill {n} --reason bench")))
            unkills.append(timed(lambda b=bot, n=name: b.command(f"flag unkill {n}")))
        dispatcher = bot.services.dispatcher
        for _ in range(rounds):
            domain.append(timed(lambda d=dispatcher, n=name: d.run_text(f"flag kill {n} --reason bench", Actor("U0DEV"))))
            dispatcher.run_text(f"flag unkill {name}", Actor("U0DEV"))
        figures(f"{label}: /ops flag kill, signed request → reply seen", kills)
        figures(f"{label}: /ops flag unkill (staging, no approval) → reply", unkills)
        figures(f"{label}: kill in the domain alone (no Slack round trip)", domain)
        emulator.stop()

    token = admin.client_token("production")
    app = AppSees(UNLEASH, token)
    config = make_config(flags={**base, "provider": unleash, "default_environment": "production"})
    emulator = start_emulator(config)
    bot = Bot(emulator=emulator, db_url=opsbot_db, redis_client=client, prefix=f"bench:{secrets.token_hex(3)}:", config=config)
    seen = []
    for _ in range(max(3, rounds // 5)):
        admin.switch(flag, "production", True)
        while app.enabled_share(flag) != 1.0:
            time.sleep(0.05)
        bot.command(f"flag kill {flag} --reason bench")
        returned = time.perf_counter()
        while app.enabled_share(flag) != 0.0:
            time.sleep(0.05)
        seen.append(time.perf_counter() - returned)
    figures("unleash: kill reply → a fresh Python client sees it off", seen)
    emulator.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
