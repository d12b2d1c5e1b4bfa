"""`POST /alertmanager` latency through the real WSGI app, beside `GET /healthz` on the same server, in one run.

In one process, on loopback: the Slack emulator, opsbot's WSGI app (``bot.web.make_wsgi_app``, what `opsbot serve`
runs) on a threaded server, real Redis and a real database (SQLite file or a fresh PostgreSQL database). Sends, one
after another over one keep-alive connection: ``GET /healthz`` (the floor: HTTP and WSGI only), first notifications
of new groups (a row and a Slack post), repeats that change nothing (a row update, no Slack call), and changed
repeats (a row update and a Slack edit). Then 20 concurrent first notifications of one group. Prints figures;
asserts nothing.

    python bench/alert_receiver.py                             # 100 of each on SQLite
    python bench/alert_receiver.py --database postgresql --count 200
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.deploy_flow import database, figures  # noqa: E402
from tests.alertmanager_kit import receiver  # noqa: E402
from tests.support import Bot, make_config, start_emulator  # noqa: E402


def body(group: int, value: str = "1") -> dict[str, Any]:
    labels = {"alertname": f"Bench{group}", "service": "api", "environment": "production"}
    one = {
        "status": "firing",
        "labels": labels,
        "annotations": {"summary": f"value {value}"},
        "startsAt": "2026-11-29T20:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "",
        "fingerprint": f"{group:016x}",
    }
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="Bench{group}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "opsbot",
        "groupLabels": {"alertname": f"Bench{group}"},
        "commonLabels": labels,
        "commonAnnotations": one["annotations"],
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [one],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="opsbot-bench-"))
    config = make_config()
    emulator = start_emulator(config)
    url, drop = database(args.database, workdir)
    prefix = f"opsbot-bench:{secrets.token_hex(4)}:"
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0", decode_responses=True)
    bot = Bot(emulator=emulator, db_url=url, redis_client=client, prefix=prefix, config=config)
    token = secrets.token_hex(16)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    try:
        with receiver(bot, token) as base, httpx.Client(base_url=base, timeout=30) as http:

            def timed(send: Any) -> float:
                started = time.perf_counter()
                response = send()
                assert response.status_code == 200, response.text
                return (time.perf_counter() - started) * 1000

            def alert(group: int, value: str = "1") -> Any:
                return lambda: http.post("/alertmanager", content=json.dumps(body(group, value)), headers=headers)

            n = args.count
            print(f"POST /alertmanager, {n} of each, one at a time ({args.database})")
            print(figures("GET /healthz (floor)", [timed(lambda: http.get("/healthz")) for _ in range(n)]))
            print(figures("first notification → post", [timed(alert(g)) for g in range(n)]))
            print(figures("repeat, nothing changed", [timed(alert(g)) for g in range(n)]))
            print(figures("repeat, changed → edit", [timed(alert(g, "2")) for g in range(n)]))
            posts = len(emulator.calls_to("chat.postMessage"))
            edits = len(emulator.calls_to("chat.update"))
            print(f"Slack calls: {posts} posts, {edits} edits for {3 * n} notifications of {n} groups")
            with ThreadPoolExecutor(max_workers=20) as pool:
                started = time.perf_counter()
                answers = list(
                    pool.map(lambda _: http.post("/alertmanager", content=json.dumps(body(10_000)), headers=headers), range(20))
                )
                wall = (time.perf_counter() - started) * 1000
            messages = [m for m in emulator.in_channel("C0ALERTS") if "Bench10000" in m.text]
            statuses = sorted({a.status_code for a in answers})
            print(f"20 concurrent first notifications of one group: {wall:.0f} ms, answers {statuses}, messages {len(messages)}")
    finally:
        bot.close()
        emulator.stop()
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
        drop()


if __name__ == "__main__":
    main()
