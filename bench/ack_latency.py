"""Ack latency and reply latency of `opsbot serve`, side by side with a minimal Bolt app, in one run.

Starts, on loopback: a Slack emulator (its own process, recording when each reply arrives), `opsbot
serve` (gunicorn) on real Redis and a real PostgreSQL database, and a minimal Bolt app under the same
gunicorn settings that acks and sends a fixed reply. It sends signed requests at fixed rates (open
loop: request i leaves at i/rate whatever happened before) over keep-alive connections, signed
beforehand by a minimal HTTP client so the load generator leaves the CPU to the servers under test.

Two kinds of traffic:

- ``read``: `/ops help` and `/ops locks`, alternating.
- ``write``: mutating traffic, in turn: a deploy request to production (an approval request and its lock,
  or a refusal when the lock is held), `lock` and `unlock` of a staging target, `flag kill` / `flag unkill`
  (an unkill in production asks for approval), `incident update INC-n`, and an Approve click on one of 100
  pending approval requests opened before the run (its first two clicks approve it and queue the deploy; later
  ones are refused as already decided). Every one of them is recorded in the audit log.

Every (traffic, target, rate) runs ``--runs`` times (default 3), interleaved; the table shows the median of
the runs' p50 and p99 and each run's p99, because one run is not a measurement. ``--slow-slack S`` and
``--slow-db S`` add a third target: the same `opsbot serve` deployment (same database, same Redis prefix)
whose Slack answers every call in S seconds and whose database answers every round trip S seconds late
(through a delaying TCP proxy). The ack must not notice. Each `opsbot serve` worker's resident memory is
printed when idle and after the run, with the number of commands it took. It prints figures; it asserts nothing.

    python bench/ack_latency.py                                   # read+write, 50/s and 200/s, 20 s, 3 runs
    python bench/ack_latency.py --slow-slack 2 --slow-db 2        # the same with a slow Slack and database
    python bench/ack_latency.py --traffic write --rates 200 --duration 10 --runs 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.adapters.sql.engine import normalize_url, upgrade  # noqa: E402
from bot.console import payloads  # noqa: E402
from bot.console.slack_emulator import SlackEmulator  # noqa: E402

MINIMAL_APP = """
import os, re
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

    @app.action(re.compile(".*"))
    def click(ack, respond):
        ack()
        respond(text="ok", response_type="ephemeral", replace_original=False)

    return SlackRequestHandler(app)
"""

SERVICES = 100  # services the write traffic deploys, locks and unlocks (svc000 …)
PENDING = 100  # approval requests opened before the run, for Approve clicks (svc100 …)
INCIDENTS = 20  # incidents declared before the run, updated in turn (one incident takes ~25 updates a second at most)
APPROVERS = [f"U0APP{n:02d}" for n in range(20)]
SLOW_PREFIX = "/slow"  # the emulator answers paths under this prefix after --slow-slack seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_config(work: Path) -> Path:
    """An opsbot config with many services, approvers by user ID (no user-group look-ups), a SQL flag store."""
    services = {
        f"svc{n:03d}": {
            "version_pattern": "semver",
            "environments": {"staging": {}, "production": {}},
            "deploy": {"type": "command", "argv": ["/bin/true"], "timeout_seconds": 60},
        }
        for n in range(SERVICES + PENDING)
    }
    flags_db = {env: {"url": f"sqlite:///{work / f'flags-{env}.db'}"} for env in ("staging", "production")}
    config = {
        "channels": {"deployments": "C0DEPLOYS", "incidents": "C0INCIDENTS", "alerts": "C0ALERTS"},
        "roles": {"admin": ["U0ADMIN"], "approver": APPROVERS, "deployer": ["U0DEPLOYER", "U0ADMIN"], "viewer": ["*"]},
        "environments": {"staging": {"approvals": 0}, "production": {"approvals": 2}},
        "default_service": "svc000",
        "services": services,
        "flags": {
            "provider": {"type": "sql", "databases": flags_db, "seed_demo_flags": True},
            "default_environment": "production",
        },
        "incidents": {"channel_prefix": "inc", "severities": {"P3": {"escalation": []}}},
    }
    path = work / "opsbot-bench.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_emulator(token: str, slow_seconds: float, ready: Any, commands: Any, results: Any) -> None:
    """The emulator in its own process, so the load generator does not share its interpreter. Paths under
    ``/slow`` are answered ``slow_seconds`` late (the slow-Slack target's API and response URLs)."""
    emulator = SlackEmulator(token=token).start()
    arrivals: dict[str, float] = {}
    samples: dict[str, str] = {}  # one reply per request kind (the key's second character), to show what the mix did
    original = emulator.handle

    def timed(path: str, headers: dict[str, str], raw: str) -> Any:
        slow = path.startswith(SLOW_PREFIX + "/")
        path = path.removeprefix(SLOW_PREFIX) if slow else path
        if path.startswith("/response/"):
            key = path.rsplit("/", 1)[-1]
            arrivals.setdefault(key, time.time())
            if key.startswith("R"):
                samples.setdefault(key[:2], raw)
        if slow:
            time.sleep(slow_seconds)
        return original(path, headers, raw)

    emulator.handle = timed  # type: ignore[method-assign]
    everyone = ["U0ADMIN", "U0DEPLOYER", *APPROVERS]
    for channel, name in (
        ("C0BENCH", "bench"),
        ("C0DEPLOYS", "deployments"),
        ("C0INCIDENTS", "incidents"),
        ("C0ALERTS", "alerts"),
    ):
        emulator.add_channel(channel, name, everyone)
    for user in everyone:
        emulator.add_user(user, user.lower())
    ready.put(emulator.base_url)
    commands.get()  # wait for "dump"
    results.put((dict(arrivals), samples))
    emulator.stop()


def run_delay_proxy(upstream_port: int, delay: float, ready: Any) -> None:
    """A TCP proxy whose every chunk from the upstream, after the first, reaches the client ``delay`` seconds late:
    with PostgreSQL behind it, every round trip of a query takes ``delay`` seconds more."""

    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
            try:
                up_r, up_w = await asyncio.open_connection("127.0.0.1", upstream_port)
            except OSError:
                client_w.close()
                return
            late: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

            async def upstream() -> None:
                while data := await client_r.read(65536):
                    up_w.write(data)
                    await up_w.drain()
                up_w.close()

            async def read_down() -> None:
                first = True  # the server's answer to the start-up message passes at once: the driver's connect
                # timeout (3 s) would otherwise end every connection; every later answer (each query's) is late
                while data := await up_r.read(65536):
                    late.put_nowait((loop.time() + (0.0 if first else delay), data))
                    first = False
                late.put_nowait((loop.time() + delay, b""))

            async def write_down() -> None:
                while True:
                    due, data = await late.get()
                    await asyncio.sleep(max(0.0, due - loop.time()))
                    if not data:
                        client_w.close()
                        return
                    client_w.write(data)
                    await client_w.drain()

            try:
                await asyncio.gather(upstream(), read_down(), write_down())
            except (OSError, asyncio.IncompleteReadError):
                client_w.close()
                up_w.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        ready.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=5).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server did not come up: {log.read_text()[-2000:]}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pids: list[int], *, reaped: bool = False) -> float:
    """User + system CPU of ``pids`` (/proc/<pid>/stat); with ``reaped``, also that of their children that have ended
    (PostgreSQL's backends end with their connections; the postmaster reaps them and keeps their CPU)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if reaped else 0)
        total += ticks / os.sysconf("SC_CLK_TCK")
    return total


def settle(target: Target, limit: float = 180.0) -> float:
    """Wait until ``target``'s workers are idle (under 10 % of a CPU for a second): a server still working through
    the last run's backlog would take the CPU from the next run. The seconds it took."""
    pids, start = workers_of(target.process.pid), time.monotonic()
    before = cpu_seconds(pids)
    while time.monotonic() - start < limit:
        time.sleep(1.0)
        now = cpu_seconds(pids)
        if now - before < 0.1:
            break
        before = now
    return time.monotonic() - start


def workers_of(pid: int) -> list[int]:
    """The server's working processes: every descendant of the server process (gunicorn's workers and, with
    ``OPSBOT_WORK_PROCESSES``, the work processes each of them starts)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], list(parents.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(parents.get(child, []))
    return sorted(found)


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


KEEP_ALIVE = [True]  # --connections: keep-alive (reuse idle connections) or new (one connection per request)


def http_request(host: str, secret: str, body: str) -> bytes:
    headers = payloads.sign(secret, body)
    lines = [
        "POST /slack/events HTTP/1.1",
        f"Host: {host}",
        f"Content-Length: {len(body.encode())}",
        "Connection: keep-alive" if KEEP_ALIVE[0] else "Connection: close",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


@dataclass(frozen=True)
class Pending:
    """An approval request opened before the run, and where its message is."""

    request_id: str
    channel: str
    ts: str


def command_body(text: str, user: str, response_url: str, channel: str = "C0BENCH") -> str:
    return payloads.slash_command(text, user_id=user, channel_id=channel, response_url=response_url)


def read_body(i: int, response_url: str, run: int, pending: list[Pending]) -> str:
    return command_body("help" if i % 2 == 0 else "locks", "U0ADMIN", response_url)


MIX = list(range(6))  # which kinds of the write mix are sent (--mix), by index into WRITE_KINDS


def write_body(i: int, response_url: str, run: int, pending: list[Pending]) -> str:
    """The i-th request of the mutating mix (see the module's docstring)."""
    turn, k = divmod(i, len(MIX))
    k = MIX[k]
    svc = f"svc{i % SERVICES:03d}"
    if k == 0:
        return command_body(f"deploy v1.{run}.{i} {svc} to production --reason bench", "U0DEPLOYER", response_url)
    if k == 1:
        return command_body(f"lock {svc} staging --reason bench", "U0ADMIN", response_url)
    if k == 2:
        return command_body(f"unlock svc{(i - 1) % SERVICES:03d} staging --reason bench", "U0ADMIN", response_url)
    if k == 3:
        verb = "kill" if turn % 2 == 0 else "unkill"
        return command_body(f"flag {verb} checkout.new-flow production --reason bench", "U0ADMIN", response_url)
    if k == 4:
        return command_body(
            f'incident update INC-1 monitoring bench update {run}.{i} --impact "none, a benchmark" --next 1h',
            "U0ADMIN",
            response_url,
        )
    target = pending[turn % len(pending)]
    action = {"action_id": "approval_approve", "value": target.request_id, "text": {"type": "plain_text", "text": "Approve"}}
    return payloads.block_action(
        user_id=APPROVERS[turn % len(APPROVERS)],
        channel_id=target.channel,
        message_ts=target.ts,
        action=action,
        response_url=response_url,
    )


WRITE_KINDS = ["deploy", "lock", "unlock", "flag", "incident", "approve"]
TRAFFIC: dict[str, Callable[[int, str, int, list[Pending]], str]] = {"read": read_body, "write": write_body}


@dataclass
class Target:
    name: str
    base: str
    process: subprocess.Popen[bytes]
    response_prefix: str  # where its response URLs point (slow or not)
    commands: int = 0
    idle_rss: dict[int, float] = field(default_factory=dict)
    settle_seconds: float = 0.0  # the longest it took to finish a run's work after its last request
    rss_after: list[tuple[int, float]] = field(default_factory=list)  # (requests taken, its workers' largest RSS) per run


@dataclass(frozen=True)
class Run:
    traffic: str
    target: str
    rate: int
    results: list[tuple[str, float, float, int]]  # (response key, sent at, ack seconds, HTTP status)
    cpu_ms: dict[str, float] = field(default_factory=dict)  # CPU per request (ms) the run and its backlog took, by process


def postgres_pids() -> list[int]:
    """Every PostgreSQL server process (the bench's backends among them; the machine is otherwise quiet)."""
    pids = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "postgres":
                pids.append(int(comm.parent.name))
        except OSError:
            continue
    return pids


async def fire(target: Target, secret: str, traffic: str, rate: int, duration: float, run: int, pending: list[Pending]) -> Run:
    """Open-loop load: each request leaves at its time on an idle keep-alive connection (a new one when none is idle)."""
    host, port = target.base.removeprefix("http://").split(":")
    total = int(rate * duration)
    letter = "R" if target.name == "opsbot serve" else "M"  # replies to opsbot serve are kept as samples
    keys = [f"{letter}{MIX[i % len(MIX)] if traffic == 'write' else 'r'}{secrets.token_hex(6)}" for i in range(total)]
    build = TRAFFIC[traffic]
    requests = [
        http_request(f"{host}:{port}", secret, build(i, f"{target.response_prefix}/{keys[i]}", run, pending))
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
                if KEEP_ALIVE[0]:
                    idle.append(connection)
                else:
                    connection.writer.close()
                break
            except (OSError, asyncio.IncompleteReadError, ValueError):
                continue
        results.append((keys[i], sent, time.perf_counter() - start, status))

    start = time.monotonic()
    await asyncio.gather(*(one(i, start + i / rate) for i in range(total)))
    for connection in idle:
        connection.writer.close()
    target.commands += total
    return Run(traffic, target.name, rate, results)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def start_server(name: str, argv: list[str], env: dict[str, str], cwd: Path, log: Path, health: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    wait_healthy(health, process, log)
    return process


def prepare(base: str, secret: str, emulator_url: str, db_url: str) -> list[Pending]:
    """Before the timed runs: declare ``INCIDENTS`` incidents and open ``PENDING`` deploy approval requests; their ids
    and messages."""
    with httpx.Client(base_url=base, timeout=30) as client:

        def send(text: str, user: str) -> None:
            body = command_body(text, user, f"{emulator_url}/response/setup-{secrets.token_hex(4)}")
            answer = client.post("/slack/events", content=body, headers=payloads.sign(secret, body))
            answer.raise_for_status()

        for n in range(INCIDENTS):
            send(f"incident declare P3 bench incident {n} --service svc000", "U0ADMIN")
        for n in range(SERVICES, SERVICES + PENDING):
            send(f"deploy v1.0.0 svc{n:03d} to production --reason setup", "U0DEPLOYER")
    engine = sa.create_engine(db_url)
    query = sa.text(
        "SELECT a.id, m.channel, m.ts FROM approval_requests a JOIN slack_messages m ON m.key = 'approval:' || a.id "
        "WHERE a.state = 'pending'"
    )
    deadline = time.monotonic() + 60
    found: list[Pending] = []
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            found = [Pending(*row) for row in conn.execute(query)]
        with engine.connect() as conn:
            incidents = int(conn.execute(sa.text("SELECT count(*) FROM incidents")).scalar() or 0)
        if len(found) >= PENDING and incidents >= INCIDENTS:
            break
        time.sleep(0.5)
    engine.dispose()
    if not found:
        raise SystemExit("no approval request was opened before the run; see the server's log")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="50,200", help="requests per second, comma-separated")
    parser.add_argument("--traffic", default="read,write", help="read, write or both, comma-separated")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per run")
    parser.add_argument("--runs", type=int, default=3, help="runs per (traffic, target, rate); the median is shown")
    parser.add_argument("--slow-slack", type=float, default=0.0, help="seconds Slack takes to answer, for a third target")
    parser.add_argument("--slow-db", type=float, default=0.0, help="seconds each database round trip takes, for a third target")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument(
        "--pg-url", default=os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers for every server")
    parser.add_argument(
        "--work-processes", type=int, default=None, help="OPSBOT_WORK_PROCESSES for opsbot serve (default: its default)"
    )
    parser.add_argument(
        "--in-process-baseline",
        action="store_true",
        help="also run opsbot serve with OPSBOT_WORK_PROCESSES=0 (the work on the workers' threads), as a target",
    )
    parser.add_argument("--mix", default=",".join(WRITE_KINDS), help="kinds of the write mix to send, comma-separated")
    parser.add_argument(
        "--connections",
        choices=("new", "keep-alive"),
        default="new",
        help="a new connection per request, as requests from many Slack hosts arrive (default), or reuse idle ones",
    )
    args = parser.parse_args()
    KEEP_ALIVE[0] = args.connections == "keep-alive"
    MIX[:] = [WRITE_KINDS.index(kind.strip()) for kind in args.mix.split(",")]
    rates = [int(r) for r in args.rates.split(",")]
    kinds = [t.strip() for t in args.traffic.split(",") if t.strip()]
    slow = args.slow_slack > 0 or args.slow_db > 0

    token, secret = "xoxb-bench-" + secrets.token_hex(4), secrets.token_hex(16)
    ctx = mp.get_context("spawn")
    ready, commands, results_q = ctx.Queue(), ctx.Queue(), ctx.Queue()
    emulator = ctx.Process(target=run_emulator, args=(token, args.slow_slack, ready, commands, results_q), daemon=True)
    emulator.start()
    emulator_url = ready.get(timeout=30)

    db_name = f"opsbot_bench_{secrets.token_hex(3)}"
    admin = sa.create_engine(normalize_url(args.pg_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{db_name}"'))
    db = sa.engine.make_url(normalize_url(args.pg_url)).set(database=db_name)
    db_url = db.render_as_string(hide_password=False)
    upgrade(db_url)
    # The slow target gets a database (and a Redis prefix) of its own: its backlog of slow transactions, still running
    # long after its run, must not hold rows (an incident, a flag) or locks that the other targets wait for.
    slow_db = db.set(database=f"{db_name}_slow")
    if args.slow_slack > 0 or args.slow_db > 0:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{db_name}_slow"'))
        upgrade(slow_db.render_as_string(hide_password=False))

    work = Path(tempfile.mkdtemp(prefix="opsbot-bench-"))
    (work / "minimal_app.py").write_text(MINIMAL_APP)
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": token,
        "SLACK_SIGNING_SECRET": secret,
        "SLACK_API_URL": emulator_url + "/api/",
        "DATABASE_URL": db_url,
        "REDIS_URL": args.redis_url,
        "OPSBOT_CONFIG": str(bench_config(work)),
        "OPSBOT_REDIS_PREFIX": f"opsbot-bench:{secrets.token_hex(3)}:",
        "WEB_CONCURRENCY": str(args.workers),
        "LOG_LEVEL": "WARNING",
    }
    if args.work_processes is not None:
        env["OPSBOT_WORK_PROCESSES"] = str(args.work_processes)
    targets: list[Target] = []
    proxy = None
    runs: list[Run] = []
    try:
        port = free_port()
        serve = [sys.executable, "-m", "bot.cli", "serve", "--port", str(port)]
        opsbot = start_server("opsbot", serve, env, ROOT, work / "opsbot.log", f"http://127.0.0.1:{port}/healthz")
        targets.append(Target("opsbot serve", f"http://127.0.0.1:{port}", opsbot, f"{emulator_url}/response"))
        port = free_port()
        gunicorn = [sys.executable, "-m", "gunicorn", "-w", str(args.workers), "-k", "gthread", "--threads", "8"]
        minimal_argv = [*gunicorn, "-b", f"127.0.0.1:{port}", "--log-level", "warning", "minimal_app:create()"]
        minimal = start_server("minimal", minimal_argv, env, work, work / "minimal.log", f"http://127.0.0.1:{port}/")
        targets.append(Target("minimal Bolt app", f"http://127.0.0.1:{port}", minimal, f"{emulator_url}/response"))
        if args.in_process_baseline:
            port = free_port()
            serve = [sys.executable, "-m", "bot.cli", "serve", "--port", str(port)]
            in_env = {**env, "OPSBOT_WORK_PROCESSES": "0"}
            in_process = start_server(
                "in-process", serve, in_env, ROOT, work / "opsbot-in.log", f"http://127.0.0.1:{port}/healthz"
            )
            targets.append(
                Target("opsbot, work on its threads", f"http://127.0.0.1:{port}", in_process, f"{emulator_url}/response")
            )
        fast = len(targets)
        if slow:
            slow_env = {
                **env,
                "SLACK_API_URL": f"{emulator_url}{SLOW_PREFIX}/api/",
                "DATABASE_URL": slow_db.render_as_string(hide_password=False),
                "OPSBOT_REDIS_PREFIX": f"opsbot-bench:{secrets.token_hex(3)}:",
            }
            if args.slow_db > 0:
                proxy_ready = ctx.Queue()
                proxy = ctx.Process(target=run_delay_proxy, args=(db.port or 5432, args.slow_db, proxy_ready), daemon=True)
                proxy.start()
                proxied = slow_db.set(host="127.0.0.1", port=proxy_ready.get(timeout=30))
                slow_env["DATABASE_URL"] = proxied.render_as_string(hide_password=False)
            port = free_port()
            serve = [sys.executable, "-m", "bot.cli", "serve", "--port", str(port)]
            slowed = start_server("slow", serve, slow_env, ROOT, work / "opsbot-slow.log", f"http://127.0.0.1:{port}/healthz")
            name = f"opsbot, slow Slack {args.slow_slack:g}s + DB {args.slow_db:g}s"
            targets.append(Target(name, f"http://127.0.0.1:{port}", slowed, f"{emulator_url}{SLOW_PREFIX}/response"))
        time.sleep(2)
        # Work processes report ready a few seconds after their gunicorn worker answers (until then, commands run in
        # the worker): wait until their number stops growing, then for their start-up to finish.
        for _ in range(30):
            counts = [len(workers_of(t.process.pid)) for t in targets]
            time.sleep(1)
            if counts == [len(workers_of(t.process.pid)) for t in targets]:
                break
        time.sleep(5)
        for target in targets:
            target.idle_rss = {pid: rss_mb(pid) for pid in workers_of(target.process.pid)}
        pending = prepare(targets[0].base, secret, emulator_url, db_url) if "write" in kinds else []

        # The slow target's runs come last: its backlog drains for minutes after each of them (so it is not waited for).
        for group in (targets[:fast], targets[fast:]):
            for run in range(1, args.runs + 1):
                for rate in rates:
                    for traffic in kinds:
                        for target in group:
                            asyncio.run(fire(target, secret, traffic, min(rate, 20), 1.0, 0, pending))  # warm-up
                            processes = {
                                "workers": lambda t=target: workers_of(t.process.pid),
                                "PostgreSQL": postgres_pids,
                                "Slack emulator": lambda: [emulator.pid] if emulator.pid else [],
                            }
                            before = {name: cpu_seconds(pids(), reaped=True) for name, pids in processes.items()}
                            done = asyncio.run(fire(target, secret, traffic, rate, args.duration, run, pending))
                            if target in targets[:fast]:
                                target.settle_seconds = max(target.settle_seconds, settle(target))
                            else:
                                time.sleep(2)
                            target.rss_after.append((target.commands, max(rss_mb(pid) for pid in workers_of(target.process.pid))))
                            for name, pids in processes.items():
                                spent = cpu_seconds(pids(), reaped=True) - before[name]
                                done.cpu_ms[name] = spent * 1000 / max(1, len(done.results))
                            runs.append(done)
        time.sleep(3)
        after_rss = {target.name: {pid: rss_mb(pid) for pid in workers_of(target.process.pid)} for target in targets}
        commands.put("dump")
        arrivals, samples = results_q.get(timeout=60)
    finally:
        for target in targets:
            target.process.terminate()
            target.process.wait(timeout=30)
        if proxy is not None:
            proxy.terminate()
        admin.dispose()
        with sa.create_engine(normalize_url(args.pg_url), isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db_name}_slow" WITH (FORCE)'))

    report(args, kinds, rates, targets, runs, arrivals, after_rss)
    if "write" in kinds:
        print("\nwhat the write mix answered (one reply of each kind from opsbot serve, first 110 characters):")
        for kind in range(6):
            raw = samples.get(f"R{kind}", "")
            try:
                text = json.loads(raw).get("text", "")
            except ValueError:
                text = raw
            print(f"  {WRITE_KINDS[kind]:<14} {' '.join(str(text).split())[:110]}")


def report(
    args: argparse.Namespace,
    kinds: list[str],
    rates: list[int],
    targets: list[Target],
    runs: list[Run],
    arrivals: dict[str, float],
    after_rss: dict[str, dict[int, float]],
) -> None:
    fast = sum(1 for t in targets if not t.name.startswith("opsbot, slow"))
    print(
        f"\nack and reply latency: {args.duration:g} s per run, median of {args.runs} runs; {args.workers} gunicorn workers "
        f"(gthread, 8 threads); {os.cpu_count()} CPUs; Slack's ack deadline is 3000 ms\n"
    )
    header = (
        f"{'traffic':<7} {'target':<34} {'rate':>6} {'sent':>6} {'non-200':>7} {'ack p50':>8} {'ack p99':>8}  "
        f"{'runs p99':<22} {'reply p50':>9} {'reply p99':>9} {'replies':>8}"
    )
    print(header)
    print("-" * len(header))
    medians: dict[tuple[str, str, int], float] = {}
    for traffic in kinds:
        for rate in rates:
            for target in targets:
                mine = [r for r in runs if (r.traffic, r.target, r.rate) == (traffic, target.name, rate)]
                sent = sum(len(r.results) for r in mine)
                bad = sum(1 for r in mine for res in r.results if res[3] != 200)
                p50s, p99s, reply50, reply99, replies = [], [], [], [], 0
                for r in mine:
                    acks = [res[2] * 1000 for res in r.results if res[3] == 200]
                    back = [(arrivals[key] - at) * 1000 for key, at, _, status in r.results if status == 200 and key in arrivals]
                    replies += len(back)
                    p50s.append(pct(acks, 0.5))
                    p99s.append(pct(acks, 0.99))
                    reply50.append(pct(back, 0.5))
                    reply99.append(pct(back, 0.99))
                medians[(traffic, target.name, rate)] = statistics.median(p99s)
                each = ", ".join(f"{v:.1f}" for v in p99s)
                print(
                    f"{traffic:<7} {target.name:<34} {rate:>4}/s {sent:>6} {bad:>7} {statistics.median(p50s):>6.1f}ms "
                    f"{statistics.median(p99s):>6.1f}ms  {each:<22} {statistics.median(reply50):>7.1f}ms "
                    f"{statistics.median(reply99):>7.1f}ms {replies:>8}"
                )
    print("\nack = HTTP response to Slack's POST; reply = the message reaching the (emulated) response URL;")
    print("ack p50/p99 and reply p50/p99 are medians over the runs; 'runs p99' lists each run's ack p99 (ms).")
    print("\nopsbot's ack p99 against the minimal Bolt app's (the issue's target: at most 1.0x):")
    for traffic in kinds:
        for rate in rates:
            ours, base = medians[(traffic, "opsbot serve", rate)], medians[(traffic, "minimal Bolt app", rate)]
            line = f"  {traffic:<5} {rate:>4}/s: {ours:.1f} ms vs {base:.1f} ms ({ours / base:.2f}x)"
            for target in targets[2:]:
                other = medians[(traffic, target.name, rate)]
                if target.name.startswith("opsbot, slow"):
                    line += f"; with slow Slack and DB {other:.1f} ms ({other / ours:.2f}x its normal value)"
                else:
                    line += f"; {target.name}: {other:.1f} ms ({other / base:.2f}x)"
            print(line)
    print("\nresident memory per worker (MB), idle after start → after the run:")
    for target in targets:
        idle, after = target.idle_rss, after_rss.get(target.name, {})
        for pid in sorted(set(idle) | set(after)):
            before, now = idle.get(pid, float("nan")), after.get(pid, float("nan"))
            growth = (now / before - 1) * 100 if before == before and now == now else float("nan")
            print(f"  {target.name:<34} pid {pid:>7}: {before:6.1f} → {now:6.1f} ({growth:+.1f} %)")
        print(
            f"  {target.name:<34} took {target.commands} requests (warm-ups included); after a run it was busy "
            f"for up to {target.settle_seconds:.0f} s more"
        )
        series = ", ".join(f"{rss:.1f} after {taken}" for taken, rss in target.rss_after)
        print(f"  {target.name:<34} largest worker RSS (MB) after each run: {series}")
    print("\nCPU per request (ms; medians over the runs), counted from the run's start until its backlog was done:")
    print(f"  {'traffic':<7} {'target':<34} {'rate':>6} {'workers':>8} {'PostgreSQL':>10} {'emulator':>9} {'total':>7}  at most")
    for traffic in kinds:
        for rate in rates:
            for target in targets[:fast]:
                mine = [r for r in runs if (r.traffic, r.target, r.rate) == (traffic, target.name, rate) and r.cpu_ms]
                if not mine:
                    continue
                cost = {name: statistics.median(r.cpu_ms[name] for r in mine) for name in mine[0].cpu_ms}
                total = sum(cost.values())
                print(
                    f"  {traffic:<7} {target.name:<34} {rate:>4}/s {cost['workers']:>8.1f} {cost['PostgreSQL']:>10.1f} "
                    f"{cost['Slack emulator']:>9.1f} {total:>7.1f}  {(os.cpu_count() or 1) * 1000 / total:>5.0f}/s on {os.cpu_count()} CPUs"
                )
    print(json.dumps({f"{k[0]} {k[1]} {k[2]}/s": round(v, 1) for k, v in medians.items()}))


if __name__ == "__main__":
    main()
