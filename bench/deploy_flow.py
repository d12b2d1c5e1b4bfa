"""Deploy flow latency through the real app: request, approvals, start, finish; and 20 clicks racing.

In one process, on loopback: the Slack emulator, the real Bolt app (signed requests, Bolt's own
dispatch), real Redis, a real database (SQLite file or a fresh PostgreSQL database), the `command`
provider running tests/programs/fake_deploy.py, and verification over HTTP against a local service
double by the health engine (one check: watch_seconds 0). Jobs run on the in-process runner. Prints figures; asserts nothing.

    python bench/deploy_flow.py                       # 20 rounds on SQLite
    python bench/deploy_flow.py --database postgresql --rounds 30
"""

from __future__ import annotations

import argparse
import copy
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.adapters.sql.engine import upgrade  # noqa: E402
from bot.config import parse_config  # noqa: E402
from tests.deploy_kit import ServiceDouble, deploy_config_data, deployed_log  # noqa: E402
from tests.support import Bot, start_emulator  # noqa: E402

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def figures(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"{name:<34} p50 {statistics.median(ordered):7.1f} ms   p95 {p95:7.1f} ms   max {ordered[-1]:7.1f} ms"


def database(kind: str, workdir: Path) -> tuple[str, Callable[[], None]]:
    """A migrated database of ``kind`` (``sqlite`` in ``workdir``, or a fresh PostgreSQL one): its URL and a function
    that drops it."""
    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'bench.db'}"
        upgrade(url)
        return url, lambda: None
    name = f"opsbot_bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    upgrade(url)

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="opsbot-bench-"))
    state = workdir / "deployed"
    state.mkdir()
    double = ServiceDouble(state).start()
    config = parse_config(deploy_config_data(state, double.base_url, watch=0, every=1), "bench")
    emulator = start_emulator(config)
    url, drop = database(args.database, workdir)
    prefix = f"opsbot-bench:{secrets.token_hex(4)}:"
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0", decode_responses=True)
    bot = Bot(emulator=emulator, db_url=url, redis_client=client, prefix=prefix, config=config)
    timings: dict[str, list[float]] = {
        "request (/ops deploy → reply)": [],
        "approve click → receipt": [],
        "last approval → 🚀 announced": [],
        "🚀 → ✅ (program + 1 check)": [],
    }
    try:
        for i in range(args.rounds):
            version = f"v1.0.{i}"
            started = time.perf_counter()
            bot.command(f"deploy {version} to production", user="U0DEV")
            timings["request (/ops deploy → reply)"].append((time.perf_counter() - started) * 1000)
            request = emulator.wait_for(
                lambda v=version: next(
                    (m for m in emulator.in_channel("C0DEPLOYS") if f"Approval needed: Deploy {v} " in m.seen()), None
                )
            )
            clicked = time.perf_counter()
            bot.click(request, "Approve", "U0APPROVER1")
            timings["approve click → receipt"].append((time.perf_counter() - clicked) * 1000)
            last = time.perf_counter()
            bot.click(request, "Approve", "U0APPROVER2")
            emulator.wait_for(
                lambda v=version: any(f"Starting deployment of {v} " in m.seen() for m in emulator.in_channel("C0DEPLOYS")), 30
            )
            announced = time.perf_counter()
            timings["last approval → 🚀 announced"].append((announced - last) * 1000)
            emulator.wait_for(
                lambda v=version: any(
                    f"Deployment of {v} to production completed" in m.seen() for m in emulator.in_channel("C0DEPLOYS")
                ),
                30,
            )
            timings["🚀 → ✅ (program + 1 check)"].append((time.perf_counter() - announced) * 1000)
        for name, values in timings.items():
            print(figures(name, values))

        bot.command("deploy v2.0.0 to production", user="U0DEV")
        request = copy.deepcopy(
            emulator.wait_for(
                lambda: next((m for m in emulator.in_channel("C0DEPLOYS") if "Approval needed: Deploy v2.0.0 " in m.seen()), None)
            )
        )
        voters = ["U0APPROVER1", "U0APPROVER2", "U0APPROVER3", "U0ADMIN"] * 5
        raced = time.perf_counter()
        with ThreadPoolExecutor(max_workers=20) as pool:
            list(pool.map(lambda user: bot.click(request, "Approve", user), voters))
        wall = (time.perf_counter() - raced) * 1000
        emulator.wait_for(
            lambda: any("Deployment of v2.0.0 to production completed" in m.seen() for m in emulator.in_channel("C0DEPLOYS")), 30
        )
        bot.services.local_worker.wait_idle()  # type: ignore[attr-defined]
        runs = sum(1 for line in deployed_log(state) if " v2.0.0 " in line)
        print(f"20 concurrent Approve clicks ({args.database}): all answered in {wall:.0f} ms; deploys run: {runs}")
    finally:
        bot.services.local_worker.close()  # type: ignore[attr-defined]
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
        emulator.stop()
        double.stop()
        bot.services.engine.dispose()
        drop()  # type: ignore[operator]


if __name__ == "__main__":
    main()
