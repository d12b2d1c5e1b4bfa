"""App Home under load: 200 people open Home within 10 s; time to `views.publish` and Slack calls per open, beside a
minimal Bolt app that publishes a static Home through the same emulator, in one run. Then one change with those 200
as recent viewers, and a burst of changes: how many publishes the debounce lets through.

opsbot runs as in the tests (`tests.support.Bot`): Bolt's real dispatch of signed `app_home_opened` events, real
Redis (`--redis`, default `REDIS_URL` or redis://127.0.0.1:6379/0) and a real database (a fresh PostgreSQL one from
bench/deploy_flow.py's `database()` by default, `--database sqlite` for a file), the local Slack emulator as Slack.
The board holds 3 open incidents, 2 deploys waiting for approval and 3 held locks; each target gets one warm-up open
before measuring. Opens leave at fixed times (open loop: open i at i × 10 s / 200), each on its own thread; "time to
publish" runs from the signed request leaving to the emulator recording that person's `views.publish`. It prints
figures; it asserts nothing.

    python bench/app_home.py
    python bench/app_home.py --users 100 --seconds 5 --database sqlite
"""

from __future__ import annotations

import argparse
import collections
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from slack_bolt import App, BoltRequest  # noqa: E402
from slack_sdk import WebClient  # noqa: E402

from bench.deploy_flow import database  # noqa: E402
from bot.config import parse_config  # noqa: E402
from bot.console import payloads  # noqa: E402
from bot.console.slack_emulator import SlackEmulator  # noqa: E402
from tests.deploy_kit import deploy_config_data  # noqa: E402
from tests.support import Bot, start_emulator  # noqa: E402

STATIC_HOME = {
    "type": "home",
    "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "Hello"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "A static Home tab."}},
    ],
}


def minimal_app(emulator: SlackEmulator, secret: str) -> App:
    """The baseline: a Bolt app that publishes a static view on `app_home_opened`."""
    app = App(
        signing_secret=secret,
        token_verification_enabled=False,
        client=WebClient(token=emulator.token, base_url=emulator.api_url),
    )

    @app.event("app_home_opened")
    def publish(event: dict[str, Any], client: WebClient) -> None:
        client.views_publish(user_id=event["user"], view=STATIC_HOME)

    return app


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def open_homes(app: App, secret: str, emulator: SlackEmulator, users: list[str], seconds: float) -> dict[str, Any]:
    """Open Home for ``users`` spread evenly over ``seconds``; per-open latency to the first views.publish, calls."""
    calls_before = len(emulator.calls)
    sent: dict[str, float] = {}
    started = time.time()

    def one(user: str, at: float) -> None:
        time.sleep(max(0.0, at - time.time()))
        event = payloads.app_home_opened(user_id=user)
        body = payloads.event_callback(event, event_id="Ev" + secrets.token_hex(6).upper())
        sent[user] = time.time()
        response = app.dispatch(BoltRequest(body=body, headers=payloads.sign(secret, body, content_type="application/json")))
        assert response.status == 200, response.body

    threads = [threading.Thread(target=one, args=(u, started + i * seconds / len(users))) for i, u in enumerate(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wanted = set(users)
    deadline = time.time() + 60
    while time.time() < deadline:
        published = {c.args.get("user_id") for c in emulator.calls_to("views.publish")}
        if wanted <= published:
            break
        time.sleep(0.05)
    time.sleep(0.5)  # let stragglers (a second publish, a group read) land before counting
    calls = emulator.calls[calls_before:]
    first: dict[str, float] = {}
    for call in calls:
        user = call.args.get("user_id")
        if call.method == "views.publish" and user in wanted and user not in first:
            first[user] = call.at
    latencies = [(first[u] - sent[u]) * 1000 for u in users if u in first]
    return {
        "published": len(first),
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p99": pct(latencies, 0.99) if latencies else float("nan"),
        "calls": len(calls) / len(users),
        "by_method": collections.Counter(c.method for c in calls),
        "over_100ms": sum(1 for ms in latencies if ms > 100),
    }


def settle(bot: Bot) -> None:
    """Wait until no Home refresh is scheduled or running (the trailing ones come up to 10 s after a change)."""
    jobs, worker = bot.services.adapters.jobs, bot.services.local_worker
    assert worker is not None
    while True:
        worker.wait_idle(60)
        if not [name for _, name, _ in jobs.scheduled() if name.startswith("home.")]:  # type: ignore[attr-defined]
            worker.wait_idle(60)
            return
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="opsbot-home-bench-"))
    url, drop = database(args.database, workdir)
    data = deploy_config_data(workdir, "http://127.0.0.1:9")
    data["roles"]["viewer"] = ["*"]  # everyone may look
    config = parse_config(data, "bench")
    users = [f"U0BENCH{i:04d}" for i in range(args.users)]
    prefix = f"opsbot-bench:{secrets.token_hex(4)}:"
    client = redis.Redis.from_url(args.redis, decode_responses=True)
    emulator = start_emulator(config)
    for user in users:
        emulator.add_user(user, user.lower())
    try:
        bot = Bot(emulator=emulator, db_url=url, redis_client=client, prefix=prefix, config=config)
        for n, service in enumerate(["api", "web", "worker"]):
            bot.command(f'incident declare P{n + 1} "{service} errors" --service {service}', user="U0DEV")
        for version, env in (("v1.2.3", "production"), ("v2.0.0", "production")):
            bot.command(f"deploy {version} {'api' if version == 'v1.2.3' else 'web'} to {env}", user="U0DEV")
        bot.command('lock worker staging --reason "db maintenance"', user="U0DEV")

        emulator.add_user("U0WARMUP", "warmup")  # one open first, for each target: connections, caches, templates
        open_homes(bot.app, bot.secret, emulator, ["U0WARMUP"], 0)
        rows = [("opsbot", open_homes(bot.app, bot.secret, emulator, users, args.seconds))]
        baseline_secret = secrets.token_hex(16)
        baseline = minimal_app(emulator, baseline_secret)
        others = [f"U0BASE{i:04d}" for i in range(args.users)]
        for user in others:
            emulator.add_user(user, user.lower())
        open_homes(baseline, baseline_secret, emulator, ["U0WARMUP"], 0)
        rows.append(("minimal Bolt app (static view)", open_homes(baseline, baseline_secret, emulator, others, args.seconds)))

        print(f"{args.users} people open Home within {args.seconds:g} s ({args.database}, real Redis, the Slack emulator)")
        print(
            f"  {'target':32s} {'published':>9s} {'p50 ms':>8s} {'p99 ms':>8s} {'>100 ms':>8s} {'calls/open':>10s}  calls by method"
        )
        for name, r in rows:
            spread = ", ".join(f"{m} {c}" for m, c in sorted(r["by_method"].items()))
            print(
                f"  {name:32s} {r['published']:9d} {r['p50']:8.1f} {r['p99']:8.1f} {r['over_100ms']:8d} {r['calls']:10.2f}  {spread}"
            )

        # One change with everyone a recent viewer (their windows from the opens have closed by now).
        time.sleep(10.5)
        before = len(emulator.calls_to("views.publish"))
        started = time.time()
        bot.command('lock web staging --reason "a change everyone sees"', user="U0DEV")
        deadline = time.time() + 120
        while time.time() < deadline and len(emulator.calls_to("views.publish")) - before < args.users:
            time.sleep(0.05)
        fan_out = time.time() - started
        refreshed = len(emulator.calls_to("views.publish")) - before
        # A burst: 5 changes in about 2 s, right after that refresh. The debounce allows one trailing publish each.
        before = len(emulator.calls_to("views.publish"))
        for n in range(5):
            bot.command(f'lock api staging for=1m --reason "burst {n}"', user="U0DEV")
            bot.command("unlock api staging --reason done", user="U0ADMIN")
        burst_started = time.time()
        settle(bot)
        burst = len(emulator.calls_to("views.publish")) - before
        print(f"  one change, {args.users} recent viewers: {refreshed} publishes in {fan_out:.1f} s")
        print(
            f"  10 changes within ~2 s right after it: {burst} publishes ({burst / args.users:.2f} per person) until the "
            f"trailing refreshes were done, {time.time() - burst_started:.1f} s later"
        )
        bot.close()
    finally:
        emulator.stop()
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
        drop()


if __name__ == "__main__":
    main()
