"""CPU, SQL statements and Slack calls per command, through Bolt's real dispatch, beside a minimal Bolt app.

Where the write path's CPU goes, one command kind at a time: each kind of `bench/ack_latency.py`'s write mix (and the
read mix) is sent ``--count`` times, one after another, as signed requests into the real app (real PostgreSQL, real
Redis with RQ as the job queue and no worker, the Slack emulator in this process), and each waits for its reply. Per kind it prints the process's CPU per
command (every thread: Bolt's, the command's, the emulator's), the SQL statements it ran and the Slack Web API calls
it made. The baseline is a minimal Bolt app in the same process that acks and replies through the same emulator.
It prints figures; it asserts nothing. ``bench/ack_latency.py`` prints the same CPU under load, per process.

    python bench/command_cost.py              # 100 of each kind
    python bench/command_cost.py --count 300 --only locks   # more of one kind (Approve clicks: at most 100)
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa
from slack_bolt import App, BoltRequest
from slack_bolt.lazy_listener.runner import LazyListenerRunner
from slack_sdk import WebClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ack_latency import APPROVERS, bench_config  # noqa: E402
from bot.adapters.sql.engine import normalize_url, upgrade  # noqa: E402
from bot.app import create_app  # noqa: E402
from bot.config import load_config  # noqa: E402
from bot.console import payloads  # noqa: E402
from tests.support import Bot, Posted, start_emulator  # noqa: E402


def minimal_app(secret: str, client: WebClient) -> App:
    app = App(signing_secret=secret, token_verification_enabled=False, client=client)

    @app.command("/ops")
    def ops(ack: Any, respond: Any) -> None:
        ack()
        respond(text="ok", response_type="ephemeral")

    return app


def measure(count: int, send: Callable[[int], Any], statements: collections.Counter[str]) -> tuple[float, float]:
    """CPU ms per call of ``send`` (whole process) and SQL statements per call."""
    statements.clear()
    started = time.process_time()
    for i in range(count):
        send(i)
    return (time.process_time() - started) * 1000 / count, statements["n"] / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="commands of each kind")
    parser.add_argument("--only", default="", help="measure only the kinds whose name contains this (e.g. 'incident')")
    parser.add_argument("--pg-url", default=os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    if args.count < 1:
        parser.error("--count must be at least 1")
    if args.count > 100 and (not args.only or args.only in "Approve click"):
        parser.error(
            "--count above 100 needs --only without the Approve clicks: each of the 100 pending approval requests takes two"
        )

    admin = sa.create_engine(normalize_url(args.pg_url), isolation_level="AUTOCOMMIT")
    db_name = f"opsbot_cost_{secrets.token_hex(3)}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{db_name}"'))
    except sa.exc.OperationalError as exc:
        raise SystemExit(f"PostgreSQL at {args.pg_url} cannot be used: {str(exc.orig).splitlines()[0]}") from None
    db_url = sa.engine.make_url(normalize_url(args.pg_url)).set(database=db_name).render_as_string(hide_password=False)
    upgrade(db_url)
    statements: collections.Counter[str] = collections.Counter()
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", lambda *a, **k: statements.update(n=1))
    work = Path(tempfile.mkdtemp(prefix="opsbot-cost-"))
    config = load_config(bench_config(work))
    emulator = start_emulator(config)
    everyone = ["U0ADMIN", "U0DEPLOYER", *APPROVERS]
    for user in everyone:
        emulator.add_user(user, user.lower())
    emulator.add_channel("C0BENCH", "bench", everyone)
    client = redis.Redis.from_url(args.redis_url, decode_responses=True)
    prefix = f"opsbot-cost:{secrets.token_hex(3)}:"
    # Jobs go to RQ on the real Redis, and no worker takes them (as in bench/ack_latency.py): an approved deploy's run
    # would otherwise spend this process's CPU while later commands are measured.
    bot = Bot(emulator=emulator, db_url=db_url, redis_client=client, prefix=prefix, config=config, redis_url=args.redis_url)
    minimal = minimal_app(bot.secret, WebClient(token=emulator.token, base_url=emulator.api_url))
    n = args.count
    try:

        def command(text: Callable[[int], str], user: str = "U0ADMIN") -> Callable[[int], Posted]:
            return lambda i: bot.command(text(i), user=user, channel="C0BENCH")

        for k in range(3):  # incidents to update
            bot.command(f"incident declare P3 cost incident {k} --service svc000", user="U0ADMIN", channel="C0BENCH")
        requests = [
            bot.command(f"deploy v1.0.0 svc{100 + k % 100:03d} to production --reason cost", user="U0DEPLOYER", channel="C0BENCH")
            for k in range(min(n, 100))
        ]
        opened = [m for m in emulator.in_channel("C0DEPLOYS") if "Approval needed" in m.seen()]
        request_messages = {re.search(r"svc\d{3}", m.seen()).group(0): m for m in opened}  # type: ignore[union-attr]
        del requests

        def minimal_command(i: int) -> None:
            url = emulator.response_url("C0BENCH", "U0ADMIN")
            body = payloads.slash_command("help", user_id="U0ADMIN", channel_id="C0BENCH", response_url=url)
            minimal.dispatch(BoltRequest(body=body, headers=payloads.sign(bot.secret, body)))
            bot.reply_to(url)

        def approve(i: int) -> Any:
            message = list(request_messages.values())[i % len(request_messages)]
            return bot.click(message, "Approve", APPROVERS[(i // len(request_messages)) % len(APPROVERS)])

        class HandOver(LazyListenerRunner):  # what `opsbot serve`'s gunicorn worker does with the work: pass it on
            def start(self, function: Callable[..., None], request: BoltRequest) -> None:
                request.raw_body  # noqa: B018  # the hand-over reads the body and headers (bot.work_processes)

        ack_only = create_app(bot.settings, bot.services)
        ack_only.listener_runner.lazy_listener_runner = HandOver()

        def ack_command(i: int) -> None:
            url = emulator.response_url("C0BENCH", "U0ADMIN")
            body = payloads.slash_command("help", user_id="U0ADMIN", channel_id="C0BENCH", response_url=url)
            assert ack_only.dispatch(BoltRequest(body=body, headers=payloads.sign(bot.secret, body))).status == 200

        kinds: list[tuple[str, Callable[[int], Any]]] = [
            ("minimal Bolt app: ack + reply", minimal_command),
            ("ack only (serve's worker; work handed over)", ack_command),
            ("/ops help", command(lambda i: "help")),
            ("/ops locks", command(lambda i: "locks")),
            (
                "deploy request (approval + lock)",
                command(lambda i: f"deploy v1.1.{i} svc{i % 100:03d} to production --reason cost", "U0DEPLOYER"),
            ),
            ("lock", command(lambda i: f"lock svc{i % 100:03d} staging --reason cost")),
            ("unlock", command(lambda i: f"unlock svc{i % 100:03d} staging --reason cost")),
            (
                "flag kill / unkill (approval)",
                command(lambda i: f"flag {'kill' if i % 2 == 0 else 'unkill'} checkout.new-flow production --reason cost"),
            ),
            (
                "incident update",
                command(lambda i: f'incident update INC-{i % 3 + 1} monitoring cost {i} --impact "none" --next 1h'),
            ),
            ("Approve click", approve),
        ]
        calls_before = len(emulator.calls)
        rows = []
        for name, send in kinds:
            if args.only and args.only not in name and not name.startswith(("minimal", "ack only")):
                continue
            send(0)  # warm: first-use costs (imports, prepared statements) are not the command's
            calls_before = len(emulator.calls)
            cpu, sql = measure(n, lambda i, s=send: s(i + 1), statements)
            rows.append((name, cpu, sql, (len(emulator.calls) - calls_before) / n))
        base = rows[0][1]
        print(f"\n{n} of each, one after another; {os.cpu_count()} CPUs; PostgreSQL, Redis, the emulator in this process\n")
        print(f"| {'command':<44} | {'CPU ms':>7} | {'× minimal':>9} | {'SQL':>5} | {'Slack calls':>11} |")
        print(f"|{'-' * 46}|{'-' * 9}|{'-' * 11}|{'-' * 7}|{'-' * 13}|")
        for name, cpu, sql, calls in rows:
            print(f"| {name:<44} | {cpu:>7.2f} | {cpu / base:>8.1f}× | {sql:>5.1f} | {calls:>11.1f} |")
        print("\nCPU: the whole process (Bolt, the command, the reply, the emulator answering); SQL: statements sent;")
        print("Slack calls: Web API calls and replies the emulator took (the reply to the response URL is one).")
    finally:
        bot.close()
        emulator.stop()
        # Nothing of the run stays in Redis: its jobs (queued and scheduled), then its keys (locks, fences, Home state).
        from rq import Queue

        Queue(bot.settings.opsbot_queue, connection=redis.Redis.from_url(args.redis_url)).empty()
        stale = [*client.scan_iter(match=prefix + "*", count=1000), *client.scan_iter(match=f"rq:*{prefix}*", count=1000)]
        if stale:
            client.delete(*stale)
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
