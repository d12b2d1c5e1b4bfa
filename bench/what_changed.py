""" "What changed" read latency (``SqlRecentChanges.of``) on a filled PostgreSQL database, beside `/ops history`'s
read (``SqlDeployRepository.history``) in the same run.

Creates a throw-away database, migrates it, and records 30 days of history: ``--deploys`` deploys and rollbacks over
20 services and 2 environments, ``--flags`` flag changes over 200 flags (a tenth of them mapped to `api`). Then
times, ``--rounds`` times each: what changed for `api` over 24 h (what a declaration and a DOWN alert read), and
the last 10 deploys of `api` (the baseline). Prints p50/p99 in ms; asserts nothing.

    python bench/what_changed.py                    # 20,000 deploys, 20,000 flag changes, 300 rounds
    python bench/what_changed.py --deploys 2000 --flags 2000 --rounds 100
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.adapters.sql.deploys import SqlDeployRepository  # noqa: E402
from bot.adapters.sql.engine import create_db_engine, upgrade  # noqa: E402
from bot.adapters.sql.recent_changes import SqlRecentChanges  # noqa: E402
from bot.adapters.sql.tables import deploys, flag_changes  # noqa: E402
from bot.config import parse_config  # noqa: E402
from tests.support import config_data  # noqa: E402

ADMIN = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
STATES = ["succeeded"] * 8 + ["failed", "rolled_back"]


def admin(statement: str) -> None:
    engine = sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(statement))
    engine.dispose()


def fill(engine: sa.Engine, n_deploys: int, n_flags: int, now: datetime) -> None:
    rng = random.Random(7)
    services = ["api"] + [f"svc{i:02d}" for i in range(19)]
    rows = []
    for i in range(n_deploys):
        at = now - timedelta(seconds=rng.uniform(0, 30 * 86400))
        rows.append(
            {
                "id": f"d-{i:08x}",
                "kind": "rollback" if i % 10 == 0 else "deploy",
                "service": rng.choice(services),
                "environment": rng.choice(["staging", "production"]),
                "version": f"v1.{i // 100}.{i % 100}",
                "requester": "U0DEV",
                "reason": "bench",
                "state": rng.choice(STATES),
                "requested_at": at,
                "started_at": at,
                "finished_at": at + timedelta(minutes=5),
                "approvers": "[]",
                "lock_name": "bench",
                "hotfix": False,
            }
        )
    flags = []
    for i in range(n_flags):
        flag = f"checkout.f{i % 20}" if i % 10 == 0 else f"other.f{i % 180}"
        flags.append(
            {
                "id": f"f-{i:08x}",
                "provider": "sql",
                "flag": flag,
                "environment": "production",
                "action": rng.choice(["kill", "unkill", "on", "off", "rollout"]),
                "actor": "U0DEV",
                "reason": "bench",
                "approved_by": "",
                "after_enabled": True,
                "after_killed": False,
                "after_rollout": 50,
                "at": now - timedelta(seconds=rng.uniform(0, 30 * 86400)),
            }
        )
    flags.sort(key=lambda f: f["at"])  # seq follows time, as it does when opsbot records them
    with engine.begin() as conn:
        conn.execute(deploys.insert(), rows)
        conn.execute(flag_changes.insert(), flags)


def timed(rounds: int, call: Callable[[], object]) -> tuple[float, float]:
    call()  # warm the connection pool and the plan cache
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deploys", type=int, default=20_000)
    parser.add_argument("--flags", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    name = f"opsbot_bench_{secrets.token_hex(4)}"
    admin(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(ADMIN).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        engine = create_db_engine(url)
        now = datetime.now(UTC)
        fill(engine, args.deploys, args.flags, now)
        config = parse_config(config_data(flags={"services": {"checkout.*": "api"}}), "bench")
        changes = SqlRecentChanges(engine, config)
        found = changes.of(["api"], now - timedelta(hours=24), 60)

        def history() -> object:
            with engine.connect() as conn:
                return SqlDeployRepository(conn).history("api", None, 10)

        what = timed(args.rounds, lambda: changes.of(["api"], now - timedelta(hours=24), 60))
        base = timed(args.rounds, history)
        print(f"{args.deploys} deploys, {args.flags} flag changes over 30 days; {len(found)} changes of api in 24 h")
        print(f"{'read':<42}{'p50 ms':>10}{'p99 ms':>10}")
        print(f"{'what changed (api, 24 h)':<42}{what[0]:>10.2f}{what[1]:>10.2f}")
        print(f"{'baseline: /ops history api (10 rows)':<42}{base[0]:>10.2f}{base[1]:>10.2f}")
        engine.dispose()
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
