"""The fault kit: real outages for durability tests, never mocks.

A durability test puts real pieces between opsbot and what it depends on, breaks one of them, and
asserts on what people and providers saw. The pieces:

- **A store goes away.** ``TcpProxy`` is a loopback TCP proxy in front of Redis or PostgreSQL
  (fixtures ``redis_proxy``, ``pg_proxy``). Point opsbot at it: ``proxy.url_for(url)`` for the app in
  the test process (``Bot(db_url=pg_proxy.url_for(pg_url), redis_url=…, redis_client=…)``), and
  ``proxied_environment(env, redis=…, database=…)`` for an `opsbot` process. ``proxy.cut()``,
  ``proxy.cut_for(2)`` or ``with proxy.down(seconds=10):`` resets every open connection at once and
  refuses new ones (``ECONNREFUSED``) until ``restore()``: clients fail at once, as when the server
  process dies, never by a slow timeout. (redis-py retries a failed command 3 times with backoff by
  default, so a client may ride out a short cut; that is the client's behaviour, not the proxy's.)
- **A worker dies.** ``WorkerProcess`` (fixture ``spawn_worker``) runs a real ``opsbot worker`` with the
  environment a ``Bot`` gives (``bot.environment(path)``; the Bot needs ``redis_url`` so its jobs go
  through RQ), output in a log file. ``kill()`` is SIGKILL to the worker's process group (the worker
  and RQ's scheduler process), like the OOM killer; ``terminate()`` is SIGTERM, like a redeploy of
  opsbot; ``restart()`` starts it again with the same environment. opsbot runs deploy programs in
  sessions of their own, so they outlive a killed worker, as on a host (``kill(everything=True)``
  kills them too, as when a container dies). Every process started under the harness carries
  ``FAULTKIT_TAG`` in its environment, and ``stop()`` kills whatever still carries it.
- **Slack fails.** The emulator (``bot.console.slack_emulator``): ``fail(method, error, status=429,
  retry_after=…)``; ``fail(…, status=500, after=True)``, Slack did the work and the caller saw an
  error; ``fail_connection(method, times, after=…)``, the connection closes with no response.
- **Did a provider run twice at once?** ``tests/programs/fake_deploy.py`` (``--sleep``,
  ``--ignore-term``, ``--spawn-child``) and ``WebhookReceiver`` (``work_seconds``, ``hang``) in
  ``tests/deploy_kit.py`` append every provider run to ``STATE_DIR/runs.jsonl`` with its start and end
  time; ``provider_runs(state_dir)`` reads them and ``overlapping(runs)`` names every two runs of one
  target that were under way together (a SIGKILLed program has no end: it counts as running until now).

Put together (``tests/integration/test_fault_kit.py`` has a runnable test of the kit itself)::

    bot = Bot(..., config=deploy_config(state_dir, services_double.base_url, command_args=("--sleep", "5")),
              redis_url=redis_url)
    worker = spawn_worker(proxied_environment(bot.environment(tmp_path / "opsbot.yml"), redis=redis_proxy))
    worker.wait_for_log("Listening on")
    bot.command("deploy api v1.2.4 to staging")
    with redis_proxy.down(seconds=10):
        ...                                    # what does the channel say meanwhile?
    worker.kill()                              # mid-deploy; its program keeps running
    worker.restart()
    emulator.fail("chat.update", "internal_error", status=500, after=True)
    ...                                        # the deploy finishes, exactly once
    assert overlapping(provider_runs(state_dir)) == []

Everything binds port 0 on 127.0.0.1 and keeps its state on the instance, so tests run in parallel
under pytest-xdist. Linux only (``/proc`` finds the processes a worker left behind).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest

__all__ = [
    "TAG_VARIABLE",
    "WORKER_ARGV",
    "TcpProxy",
    "WorkerProcess",
    "pg_proxy",
    "proxied_environment",
    "redis_proxy",
    "spawn_worker",
]

T = TypeVar("T")
LOOPBACK = "127.0.0.1"
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}
DEFAULT_PORTS = {"redis": 6379, "rediss": 6379, "postgres": 5432, "postgresql": 5432}
WORKER_ARGV = (sys.executable, "-m", "bot.cli", "worker")
TAG_VARIABLE = "FAULTKIT_TAG"  # not withheld from deploy programs (opsbot withholds SLACK_*, OPSBOT_* …)


# ----- a TCP proxy that can be cut -----


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close a connection with a TCP reset (SO_LINGER 0), dropping whatever is buffered."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Link:
    """One client connection and its upstream connection."""

    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream = upstream
        self.aborted = False

    def abort(self) -> None:
        if not self.aborted:
            self.aborted = True
            _abort(self.client)
            _abort(self.upstream)

    def close(self) -> None:
        if not self.aborted:
            self.client.close()
            self.upstream.close()

    async def pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction until EOF, then pass the half-close on; any error resets both sides."""
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            if not self.aborted and writer.can_write_eof():
                writer.write_eof()
        except (OSError, RuntimeError):
            self.abort()


class TcpProxy:
    """A loopback TCP proxy in front of ``host:port`` that tests can cut and restore.

    ``TcpProxy("127.0.0.1", 6379).start()`` listens on 127.0.0.1 at a free port (``port``); every
    connection to it is piped to the upstream. ``cut()`` resets every open connection at once (both
    sides get a TCP RST: the client's next read or write fails with "connection reset", a blocked read
    fails at once) and stops listening while keeping the port reserved, so new connections are refused
    (``ECONNREFUSED``) — the quickest real failure a client can see, as when the server process dies.
    ``restore()`` listens again on the same port. Connections are not re-established for the client.

    Counts: ``connections_seen`` (accepted and piped), ``connections_dropped`` (reset by a cut),
    ``upstream_failures`` (accepted, but the upstream refused), ``open_connections`` and ``cuts``.
    Runs an asyncio loop on a daemon thread; methods are safe to call from any thread. Also a context
    manager (``with TcpProxy(...).start() as proxy:``; ``stop()`` on exit).
    """

    def __init__(self, host: str, port: int, *, connect_timeout: float = 5.0) -> None:
        self.upstream = (host, port)
        self.connect_timeout = connect_timeout
        self.connections_seen = 0
        self.connections_dropped = 0
        self.upstream_failures = 0
        self.cuts = 0
        self._port = 0
        self._reserve: socket.socket | None = None  # bound, never listening: holds the port while cut
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._is_cut = False
        self._opening = asyncio.Lock()  # one listening socket set up at a time, on the loop
        self._generation = 0  # bumped by every cut: a connection set up across a cut is dropped
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._stopped = False

    # ----- lifecycle -----
    def start(self) -> TcpProxy:
        """Listen on a free loopback port. Returns self. Raises RuntimeError if started twice."""
        if self._loop is not None:
            raise RuntimeError("this proxy is already started")
        reserve = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        reserve.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        reserve.bind((LOOPBACK, 0))
        self._reserve, self._port = reserve, reserve.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"tcp-proxy-{self._port}", daemon=True)
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        """Reset every connection, stop listening, free the port. Idempotent."""
        with self._lock:
            if self._stopped or self._loop is None:
                self._stopped = True
                return
            self._stopped = True
            self._cancel_timer()
        loop, thread = self._loop, self._thread
        self._call(self._shutdown())
        loop.call_soon_threadsafe(loop.stop)
        assert thread is not None
        thread.join(timeout=10)
        loop.close()
        if self._reserve is not None:
            self._reserve.close()

    def __enter__(self) -> TcpProxy:
        return self if self._loop is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----- where to connect -----
    @property
    def port(self) -> int:
        """The loopback port clients connect to (0 before ``start()``)."""
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        return LOOPBACK, self._port

    def url_for(self, url: str) -> str:
        """``url`` (``redis://…``, ``postgresql+psycopg://user:pw@host:5432/db`` …) rewritten to go through this proxy.

        Keeps scheme, credentials, path and query. Raises ValueError if ``url`` does not point at this
        proxy's upstream (``localhost`` and ``127.0.0.1`` count as the same host).
        """
        parts = urlsplit(url)
        scheme = parts.scheme.split("+", 1)[0]
        port = parts.port or DEFAULT_PORTS.get(scheme)
        host = parts.hostname or ""
        upstream_host, upstream_port = self.upstream
        same_host = host == upstream_host or (host in LOOPBACK_NAMES and upstream_host in LOOPBACK_NAMES)
        if not same_host or port != upstream_port:
            raise ValueError(f"{host}:{port} is not this proxy's upstream {upstream_host}:{upstream_port}")
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@{LOOPBACK}:{self._port}" if userinfo else f"{LOOPBACK}:{self._port}"
        return urlunsplit(parts._replace(netloc=netloc))

    # ----- faults -----
    @property
    def is_cut(self) -> bool:
        return self._is_cut

    @property
    def open_connections(self) -> int:
        return len(self._links)

    def cut(self) -> int:
        """Reset every open connection and refuse new ones until ``restore()``. Returns how many were reset."""
        with self._lock:
            self._cancel_timer()
        return self._call(self._cut())

    def restore(self) -> None:
        """Accept connections again (same port). Idempotent; cancels a pending timed restore."""
        with self._lock:
            self._cancel_timer()
            if self._stopped:
                return
        self._call(self._listen())

    def cut_for(self, seconds: float) -> int:
        """``cut()`` now and ``restore()`` on a background timer after ``seconds``. Returns how many were reset."""
        dropped = self.cut()
        with self._lock:
            if not self._stopped:
                self._timer = threading.Timer(seconds, self._timed_restore)
                self._timer.daemon = True
                self._timer.start()
        return dropped

    @contextlib.contextmanager
    def down(self, seconds: float | None = None) -> Iterator[TcpProxy]:
        """Cut on entry; the block runs while the upstream is unreachable.

        Without ``seconds`` the outage is the block. With ``seconds`` the outage lasts that long from
        entry: a background timer restores it even while the block still runs, and a block that ends
        sooner waits for the rest of the outage. If the block raises, the proxy is restored at once.
        """
        deadline = time.monotonic() + (seconds or 0)
        if seconds is None:
            self.cut()
        else:
            self.cut_for(seconds)
        try:
            yield self
        except BaseException:
            self.restore()
            raise
        time.sleep(max(0.0, deadline - time.monotonic()))
        self.restore()

    def wait_for_connections(self, at_least: int, timeout: float = 10.0) -> int:
        """Block until ``connections_seen >= at_least``; returns the count. Raises AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while self.connections_seen < at_least:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.connections_seen} connection(s) through the proxy, expected at least {at_least}")
            time.sleep(0.02)
        return self.connections_seen

    # ----- on the loop thread -----
    def _call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        assert self._loop is not None, "start() the proxy first"
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_restore(self) -> None:
        with self._lock:
            if self._stopped or self._timer is None:
                return
            self._timer = None
        self._call(self._listen())

    async def _listen(self) -> None:
        # A timed restore and an explicit one can both be queued on the loop: the second waits for the first and
        # finds it listening, instead of binding again while the first awaits its server (EADDRINUSE).
        async with self._opening:
            if self._server is not None:
                return
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((LOOPBACK, self._port))
            self._server = await asyncio.start_server(self._serve, sock=sock, backlog=128)
            self._is_cut = False

    async def _cut(self) -> int:
        self._is_cut = True
        self._generation += 1
        self.cuts += 1
        if self._server is not None:
            self._server.close()  # closes the listening socket now: the kernel refuses what comes next
            self._server = None
        links = list(self._links)
        self._links.clear()  # reset now, whatever their pump tasks still have to unwind
        for link in links:
            link.abort()
        self.connections_dropped += len(links)
        await asyncio.sleep(0)  # let the aborted transports close their sockets (the resets go out)
        return len(links)

    async def _shutdown(self) -> None:
        await self._cut()
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_seen += 1
        generation = self._generation
        if self._is_cut:
            _abort(writer)
            self.connections_dropped += 1
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*self.upstream), self.connect_timeout)
        except (OSError, TimeoutError):
            self.upstream_failures += 1
            _abort(writer)
            return
        link = _Link(writer, up_writer)
        if generation != self._generation:  # cut while we were connecting upstream
            link.abort()
            self.connections_dropped += 1
            return
        self._links.add(link)
        try:
            await asyncio.gather(link.pump(reader, up_writer), link.pump(up_reader, writer))
        finally:
            self._links.discard(link)
            link.close()


def proxied_environment(
    environment: Mapping[str, str], *, redis: TcpProxy | None = None, database: TcpProxy | None = None
) -> dict[str, str]:
    """A copy of an opsbot process environment whose REDIS_URL and/or DATABASE_URL go through the given proxies."""
    env = dict(environment)
    if redis is not None:
        env["REDIS_URL"] = redis.url_for(env["REDIS_URL"])
    if database is not None:
        env["DATABASE_URL"] = database.url_for(env["DATABASE_URL"])
    return env


# ----- a real `opsbot worker` process -----


def _tagged_processes(tag: str) -> list[int]:
    """Live (not zombie) processes whose environment carries ``FAULTKIT_TAG=tag``, from /proc."""
    marker = f"{TAG_VARIABLE}={tag}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):  # gone, or not ours to read
            continue
        if state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


class WorkerProcess:
    """A real `opsbot worker` (or any ``argv``) with ``environment``, its output appended to ``log_path``.

    ``start()`` runs it in a session of its own. ``kill()`` SIGKILLs its process group (``everything=True``:
    also every process started under it, its deploy programs included, as when a container dies); ``terminate()``
    sends SIGTERM and waits; ``restart()`` stops it if it runs and starts it again with the same
    environment and log. ``stop()`` — also the context manager's exit — never leaves a process behind:
    SIGTERM, then SIGKILL, then SIGKILL to every process that still carries this harness's tag
    (``FAULTKIT_TAG`` in the environment, inherited by deploy programs and their children).
    """

    def __init__(self, environment: Mapping[str, str], log_path: Path, *, argv: Sequence[str] = WORKER_ARGV) -> None:
        self.tag = secrets.token_hex(8)
        self.environment = {**environment, TAG_VARIABLE: self.tag}
        self.log_path = log_path
        self.argv = list(argv)
        self.starts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._run_offset = 0  # where the current run's output starts in the log

    # ----- lifecycle -----
    def start(self) -> WorkerProcess:
        """Start the process. Returns self. Raises RuntimeError if it is already running."""
        if self.alive:
            raise RuntimeError(f"worker {self.pid} is still running")
        if self._log is None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        self._run_offset = self._log.tell()
        self._process = subprocess.Popen(
            self.argv,
            env=self.environment,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.starts += 1
        return self

    def kill(self, *, everything: bool = False, timeout: float = 10.0) -> int | None:
        """SIGKILL the worker's process group (the worker and the RQ scheduler process it forks) and wait.

        Returns the worker's exit status (-9), or None if it never ran. Deploy programs run in sessions
        of their own and survive this, as they would on a host.

        With ``everything``, also SIGKILL every process started under this harness (deploy programs,
        their children) and wait until they are gone. Raises AssertionError if something survives ``timeout``.
        """
        code = None
        if self._process is not None:
            if self._process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._process.pid, signal.SIGKILL)  # its own process group: anything it forked in it
            code = self._process.wait(timeout=timeout)
        if everything:
            self._kill_tagged(timeout)
        return code

    def terminate(self, timeout: float = 15.0) -> int | None:
        """SIGTERM the worker and wait up to ``timeout`` s; returns its exit status, or None if it still runs."""
        if self._process is None:
            return None
        if self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def restart(self, *, timeout: float = 15.0) -> WorkerProcess:
        """Stop the worker if it runs (SIGTERM, SIGKILL after ``timeout``), then start it again. Returns self.

        What it left running (a deploy program in flight) is left running, as on a host.
        """
        if self.alive and self.terminate(timeout) is None:
            self.kill()
        return self.start()

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop the worker (SIGTERM, then SIGKILL) and kill every process left under the harness. Idempotent.

        Returns the worker's exit status (None if it never started).
        """
        code = None
        try:
            if self._process is not None:
                code = self.terminate(timeout)
                if code is None:
                    code = self.kill()
        finally:
            self._kill_tagged(10.0)
            if self._log is not None:
                self._log.close()
                self._log = None
        return code

    def __enter__(self) -> WorkerProcess:
        return self if self.alive else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----- state -----
    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit status of the last run (negative: killed by that signal); None while it runs or before it ran."""
        return self._process.poll() if self._process is not None else None

    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` s for the worker to exit on its own; its exit status, or None if it still runs."""
        if self._process is None:
            return None
        try:
            return self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def descendants(self) -> list[int]:
        """Live processes started under this harness other than the current worker (deploy programs, their children)."""
        return [pid for pid in _tagged_processes(self.tag) if pid != self.pid]

    def log_text(self, *, current_run: bool = False) -> str:
        """Everything the worker wrote (stdout and stderr, every run), or only the current run's."""
        if self._log is not None:
            self._log.flush()
        if not self.log_path.exists():
            return ""
        data = self.log_path.read_bytes()
        return (data[self._run_offset :] if current_run else data).decode("utf-8", errors="replace")

    def wait_for_log(self, text: str, timeout: float = 20.0, *, current_run: bool = True) -> str:
        """Block until ``text`` appears in the log; returns the log. Raises AssertionError on timeout or if the worker exits first."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.log_text(current_run=current_run)
            if text in log:
                return log
            if not self.alive:
                raise AssertionError(f"the worker exited ({self.returncode}) before logging {text!r}:\n{log[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in the worker's log after {timeout}s:\n{log[-3000:]}")
            time.sleep(0.05)

    def _kill_tagged(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while pids := _tagged_processes(self.tag):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                raise AssertionError(f"processes {pids} started under the worker harness survive SIGKILL")
            time.sleep(0.02)
        if self._process is not None and self._process.poll() is None:
            self._process.wait(timeout=timeout)


# ----- fixtures: a test module imports them by name (with a noqa for F401, as for deploy_kit) -----


def _proxy_for(url: str) -> TcpProxy:
    parts = urlsplit(url)
    return TcpProxy(parts.hostname or LOOPBACK, parts.port or DEFAULT_PORTS[parts.scheme.split("+", 1)[0]])


@pytest.fixture
def redis_proxy(redis_url: str) -> Iterator[TcpProxy]:
    """A started TcpProxy in front of the session's Redis; ``redis_proxy.url_for(redis_url)`` goes through it."""
    with _proxy_for(redis_url).start() as proxy:
        yield proxy


@pytest.fixture
def pg_proxy(pg_admin_url: str) -> Iterator[TcpProxy]:
    """A started TcpProxy in front of the session's PostgreSQL; ``pg_proxy.url_for(pg_url)`` goes through it."""
    with _proxy_for(pg_admin_url).start() as proxy:
        yield proxy


@pytest.fixture
def spawn_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """``spawn_worker(env, name="worker")``: a started WorkerProcess logging to ``tmp_path/<name>.log``, stopped after the test."""
    workers: list[WorkerProcess] = []

    def spawn(environment: Mapping[str, str], name: str = "worker", argv: Sequence[str] = WORKER_ARGV) -> WorkerProcess:
        worker = WorkerProcess(environment, tmp_path / f"{name}.log", argv=argv)
        workers.append(worker)
        return worker.start()

    yield spawn
    errors = []
    for worker in workers:
        try:
            worker.stop()
        except AssertionError as exc:  # stop every worker before reporting one that would not die
            errors.append(exc)
    if errors:
        raise errors[0]
