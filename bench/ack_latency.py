"""Ack latency and reply latency of `opsbot serve`, side by side with a minimal Bolt app, in one run.

Starts, on loopback: a Slack emulator (its own process, recording when each reply arrives), `opsbot
serve` (gunicorn) on real Redis and a real database, and a minimal Bolt app under the same gunicorn
settings that acks and sends a fixed reply. Sends signed `/ops help` and `/ops locks` commands at fixed
rates (open loop: request i leaves at i/rate whatever happened before) and prints, per target and
rate: ack latency p50/p99 (HTTP response to Slack's POST) and the time until the reply reaches the
emulator's response URL. Requests are signed beforehand and sent over keep-alive connections by a
minimal HTTP client, so the load generator leaves the CPU to the servers under test. It prints
figures; it asserts nothing.

    python bench/ack_latency.py                      # 50/s and 200/s, 20 s each (the issue's numbers)
    python bench/ack_latency.py --duration 5 --rates 50
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.adapters.sql.engine import normalize_url, upgrade  # noqa: E402
from bot.console import payloads  # noqa: E402
from bot.console.slack_emulator import SlackEmulator  # noqa: E402

MINIMAL_APP = """
import os
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

def create():
    app = App(signing_secret=os.environ["SLACK_SIGNING_SECRET"], token_verification_enabled=False,
              client=WebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"]))

    @app.command("/ops")
    def ops(ack, respond):
        ack()
        respond(text="ok", response_type="ephemeral")

    return SlackRequestHandler(app)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_emulator(token: str, ready: Any, commands: Any, results: Any) -> None:
    """The emulator in its own process, so the load generator does not share its interpreter."""
    emulator = SlackEmulator(token=token).start()
    arrivals: dict[str, float] = {}
    original = emulator._handle_response_url

    def timed(key: str, raw: str) -> Any:
        arrivals.setdefault(key, time.time())
        return original(key, raw)

    emulator._handle_response_url = timed  # type: ignore[method-assign]
    emulator.add_channel("C0BENCH", "bench", ["U0ADMIN"])
    ready.put(emulator.base_url)
    commands.get()  # wait for "dump"
    results.put(dict(arrivals))
    emulator.stop()


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server did not come up: {log.read_text()[-2000:]}")


class Connection:
    """A keep-alive HTTP/1.1 connection speaking just enough HTTP: a light client, so the load
    generator does not eat the CPU the servers under test need (httpx at 200/s did)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def post(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if length:
            await self.reader.readexactly(length)
        return status


def signed_request(host: str, secret: str, text: str, response_url: str) -> bytes:
    body = payloads.slash_command(text, user_id="U0ADMIN", channel_id="C0BENCH", response_url=response_url)
    headers = payloads.sign(secret, body)
    lines = [
        "POST /slack/events HTTP/1.1",
        f"Host: {host}",
        f"Content-Length: {len(body.encode())}",
        "Connection: keep-alive",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


async def fire(base: str, secret: str, emulator_url: str, rate: int, duration: float) -> list[tuple[str, float, float, int]]:
    """Open-loop load: (response key, sent at, ack latency, status) per request. Requests are signed
    beforehand; each leaves at its time on an idle keep-alive connection (a new one when none is idle)."""
    host, port = base.removeprefix("http://").split(":")
    total = int(rate * duration)
    keys = [f"R{secrets.token_hex(6)}" for _ in range(total)]
    requests = [
        signed_request(f"{host}:{port}", secret, "help" if i % 2 == 0 else "locks", f"{emulator_url}/response/{keys[i]}")
        for i in range(total)
    ]
    idle: list[Connection] = []
    results: list[tuple[str, float, float, int]] = []

    async def one(i: int, at: float) -> None:
        await asyncio.sleep(max(at - time.monotonic(), 0))
        sent, start = time.time(), time.perf_counter()
        status = 0
        for fresh in (False, True):  # a kept-alive connection the server has just closed gets one retry on a new one
            try:
                connection = idle.pop() if idle and not fresh else Connection(*await asyncio.open_connection(host, int(port)))
                status = await connection.post(requests[i])
                idle.append(connection)
                break
            except (OSError, asyncio.IncompleteReadError, ValueError):
                continue
        results.append((keys[i], sent, time.perf_counter() - start, status))

    start = time.monotonic()
    await asyncio.gather(*(one(i, start + i / rate) for i in range(total)))
    for connection in idle:
        connection.writer.close()
    return results


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="50,200", help="requests per second, comma-separated")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per rate")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument(
        "--pg-url", default=os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers for both servers")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]

    token, secret = "xoxb-bench-" + secrets.token_hex(4), secrets.token_hex(16)
    ctx = mp.get_context("spawn")
    ready, commands, results_q = ctx.Queue(), ctx.Queue(), ctx.Queue()
    emulator = ctx.Process(target=run_emulator, args=(token, ready, commands, results_q), daemon=True)
    emulator.start()
    emulator_url = ready.get(timeout=30)

    db_name = f"opsbot_bench_{secrets.token_hex(3)}"
    admin = sa.create_engine(normalize_url(args.pg_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{db_name}"'))
    db_url = sa.engine.make_url(normalize_url(args.pg_url)).set(database=db_name).render_as_string(hide_password=False)
    upgrade(db_url)

    work = Path(tempfile.mkdtemp(prefix="opsbot-bench-"))
    (work / "minimal_app.py").write_text(MINIMAL_APP)
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": token,
        "SLACK_SIGNING_SECRET": secret,
        "SLACK_API_URL": emulator_url + "/api/",
        "DATABASE_URL": db_url,
        "REDIS_URL": args.redis_url,
        "OPSBOT_CONFIG": str(ROOT / "opsbot.example.yml"),
        "OPSBOT_REDIS_PREFIX": f"opsbot-bench:{secrets.token_hex(3)}:",
        "WEB_CONCURRENCY": str(args.workers),
        "LOG_LEVEL": "WARNING",
    }
    servers: dict[str, tuple[str, subprocess.Popen[bytes]]] = {}
    try:
        port = free_port()
        log = work / "opsbot.log"
        servers["opsbot serve"] = (
            f"http://127.0.0.1:{port}",
            subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "serve", "--port", str(port)],
                env=env,
                cwd=ROOT,
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
            ),
        )
        wait_healthy(f"http://127.0.0.1:{port}/healthz", servers["opsbot serve"][1], log)
        port = free_port()
        log = work / "minimal.log"
        servers["minimal Bolt app"] = (
            f"http://127.0.0.1:{port}",
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "-w",
                    str(args.workers),
                    "-k",
                    "gthread",
                    "--threads",
                    "8",
                    "-b",
                    f"127.0.0.1:{port}",
                    "--log-level",
                    "warning",
                    "minimal_app:create()",
                ],
                env=env,
                cwd=work,
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
            ),
        )
        wait_healthy(f"http://127.0.0.1:{port}/", servers["minimal Bolt app"][1], log)

        runs: list[tuple[str, int, list[tuple[str, float, float, int]]]] = []
        for rate in rates:
            for name, (base, _) in servers.items():
                asyncio.run(fire(base, secret, emulator_url, min(rate, 20), 1.0))  # warm-up
                runs.append((name, rate, asyncio.run(fire(base, secret, emulator_url, rate, args.duration))))
                time.sleep(2)  # let the last replies land
        commands.put("dump")
        arrivals: dict[str, float] = results_q.get(timeout=60)
    finally:
        for _, process in servers.values():
            process.terminate()
            process.wait(timeout=20)
        admin.dispose()
        with sa.create_engine(normalize_url(args.pg_url), isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))

    print(
        f"\nack latency and reply latency, {args.duration:g} s per rate, {args.workers} gunicorn workers (gthread, 8 threads), "
        f"{os.cpu_count()} CPUs; Slack's ack deadline is 3000 ms\n"
    )
    header = f"{'target':<18} {'rate':>6} {'sent':>6} {'acked':>6} {'ack p50':>9} {'ack p99':>9} {'reply p50':>10} {'reply p99':>10} {'replies':>8}"
    print(header)
    print("-" * len(header))
    for name, rate, results in runs:
        ok = [r for r in results if r[3] == 200]
        acks = [r[2] * 1000 for r in ok]
        replies = [(arrivals[key] - sent) * 1000 for key, sent, _, status in ok if key in arrivals]
        print(
            f"{name:<18} {rate:>4}/s {len(results):>6} {len(ok):>6} {pct(acks, 0.5):>7.1f}ms {pct(acks, 0.99):>7.1f}ms "
            f"{pct(replies, 0.5):>8.1f}ms {pct(replies, 0.99):>8.1f}ms {len(replies):>8}"
        )
    print("\nack = HTTP response to Slack's POST; reply = the message reaching the (emulated) response URL.")
    if any(statistics.mean([r[2] for r in res] or [0]) > 3 for _, _, res in runs):
        print("note: some acks exceeded Slack's 3 s deadline on this machine")


if __name__ == "__main__":
    main()
