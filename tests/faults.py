"""The fault kit: real outages for durability tests, never mocks.

``TcpProxy`` is a loopback TCP proxy in front of Redis or PostgreSQL: point a client at it
(``proxy.url_for(url)``), then ``proxy.cut()`` / ``with proxy.down(seconds=10):`` resets every open
connection and refuses new ones until ``restore()``. The fixtures ``redis_proxy`` and ``pg_proxy``
give a started proxy in front of the session's Redis / PostgreSQL. Everything binds port 0 on
127.0.0.1 and keeps its state on the instance, so tests run in parallel under pytest-xdist.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Coroutine, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest

__all__ = ["TcpProxy", "pg_proxy", "proxied_environment", "redis_proxy"]

T = TypeVar("T")
LOOPBACK = "127.0.0.1"
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}
DEFAULT_PORTS = {"redis": 6379, "rediss": 6379, "postgres": 5432, "postgresql": 5432}


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
