"""One health request over aiohttp: a deadline over the whole request, a read cap, a redirect limit, and reasons.

The deadline covers connect, TLS, headers and the whole body (a read timeout alone restarts with every byte, so
a server trickling one byte a second would never time out). aiohttp costs about a third of httpx's CPU per
request, which is what lets one process start a thousand checks within the timeout's margin
(``bench/health_fanout.py``). Imported on the first check: aiohttp takes ~0.1 s to import.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import resource
import socket
import ssl
import time
import urllib.request
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx

from bot.config.health import HealthSettings
from bot.domain.health.judge import Observation

USER_AGENT = "opsbot-health/1"
STARTS_PER_TURN = 32  # requests that start per turn of the event loop (bench/health_fanout.py: 1,000 checks)
SOCKETS_KEPT_FREE = 256  # file descriptors left for the database, Redis, Slack and logs when the limit is low


@dataclass
class Progress:
    """How far one request got, for a timeout reason that says where it stalled."""

    phase: str = "connecting"
    received: int = 0
    sock: socket.socket | None = None  # the request's socket once made: connected means TCP is done and TLS is not

    def stalled_in(self, url: str) -> str:
        if self.phase == "connecting" and url.startswith("https:") and _connected(self.sock):
            return "in the TLS handshake"
        return self.phase


_progress: ContextVar[Progress] = ContextVar("health_request_progress")


class Fetcher:
    """One request at a time per concurrency slot: observe it, or say why it failed."""

    def __init__(self, session: aiohttp.ClientSession, gate: asyncio.Semaphore, cap: int, max_redirects: int) -> None:
        self._session = session
        self._gate = gate
        self._cap = cap
        self._max_redirects = max_redirects
        self._proxies = urllib.request.getproxies()  # HTTP(S)_PROXY / NO_PROXY, read once per fan-out
        self._starting = asyncio.Semaphore(STARTS_PER_TURN)
        self._began = asyncio.get_running_loop().time()

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: HealthSettings, verify: ssl.SSLContext | None) -> AsyncIterator[Fetcher]:
        """A fetcher for one fan-out, on the running loop: its session, its caps; closed at the end."""
        # DNS look-ups run in the loop's default executor: threads the loop's end does not wait for, so a DNS
        # server that never answers costs its checks their timeout, not the whole command its resolver's retries.
        asyncio.get_running_loop().set_default_executor(_Abandoned(max_workers=40, thread_name_prefix="health-dns"))
        cap = sockets_allowed(settings.concurrency)
        connector = aiohttp.TCPConnector(
            limit=cap, ssl=verify or default_tls(), resolver=aiohttp.ThreadedResolver(), socket_factory=_socket
        )
        async with aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": USER_AGENT},
            timeout=aiohttp.ClientTimeout(),  # no timeouts of aiohttp's own: the per-request deadline is ours
            cookie_jar=aiohttp.CookieJar(unsafe=True),  # cookies set along a redirect chain, IP hosts too
            trace_configs=[_tracing()],
        ) as session:
            yield cls(session, asyncio.Semaphore(cap), settings.max_body_kb * 1024, settings.max_redirects)

    async def fetch(self, method: str, url: str, headers: dict[str, str], timeout_ms: int) -> Observation:
        loop = asyncio.get_running_loop()
        # The deadline starts when the check has a slot: for those under the cap, when the fan-out began (not when
        # the event loop first got round to them); for the others, when a slot came free.
        slot_was_free = not self._gate.locked()
        async with self._gate:
            deadline = (self._began if slot_was_free else loop.time()) + timeout_ms / 1000
            progress = Progress()
            _progress.set(progress)
            started = time.perf_counter()
            try:
                async with asyncio.timeout_at(deadline):
                    await self._turn_to_start()
                    started = time.perf_counter()  # the latency counts from here: the queue to start is not the service's
                    return await self._request(method, url, headers, progress, started)
            except TimeoutError:
                return Observation(latency_ms=_since(started), error=timeout_reason(timeout_ms, progress, url))
            except aiohttp.TooManyRedirects:
                return Observation(latency_ms=_since(started), error=f"redirect loop: more than {self._max_redirects} redirects")
            except aiohttp.InvalidURL as exc:
                return Observation(error=f"invalid URL: {exc.__cause__ or exc}"[:160])
            except aiohttp.NonHttpUrlClientError as exc:  # a redirect to ftp:// or mailto:
                return Observation(error=f"invalid URL: {exc} is not HTTP"[:160])
            except Exception as exc:  # every other failure is a failed check with a reason, never an error
                return Observation(latency_ms=_since(started), error=transport_reason(exc, url))

    async def _turn_to_start(self) -> None:
        """Wait for this request's turn: a few requests start per turn of the event loop, and answers are read between.

        Started all at once, each of a thousand requests would wait for all the others' connecting before its own
        answer is read, and healthy answers would read as slow.
        """
        await self._starting.acquire()
        asyncio.get_running_loop().call_soon(self._starting.release)

    async def _request(self, method: str, url: str, headers: dict[str, str], progress: Progress, started: float) -> Observation:
        async with self._session.request(
            method,
            url,
            headers=headers,
            max_redirects=self._max_redirects + 1,  # aiohttp counts the redirect that breaks the limit as one of them
            proxy=_env_proxy(url, self._proxies),
        ) as response:
            progress.phase = "reading the body"
            chunks: list[bytes] = []
            async for chunk in response.content.iter_any():
                progress.received += len(chunk)
                if progress.received > self._cap:
                    break
                chunks.append(chunk)
        return Observation(
            latency_ms=_since(started),
            status_code=response.status,
            body=b"".join(chunks),
            content_type=response.headers.get("content-type", ""),
            truncated_at=self._cap if progress.received > self._cap else None,
        )


def timeout_reason(timeout_ms: int, progress: Progress, url: str) -> str:
    phase = progress.stalled_in(url)
    if phase == "reading the body":
        return f"timeout after {timeout_ms} ms reading the body ({progress.received} bytes so far)"
    return f"timeout after {timeout_ms} ms {phase}"


def transport_reason(exc: BaseException, url: str) -> str:
    """A failed request as a person would describe it: DNS, refused, TLS, a broken answer …"""
    for cause in _causes(exc):
        if isinstance(cause, aiohttp.ClientSSLError):
            continue  # aiohttp's wrapper is an SSLError too: the reason is in the one it wraps
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS error: certificate not trusted ({cause.verify_message or cause.reason})"
        if isinstance(cause, ssl.SSLError):
            reason = (cause.reason or str(cause)).lower().replace("_", " ")
            hint = " (is it plain HTTP?)" if "wrong version" in reason or "record layer" in reason else ""
            return f"TLS error: {reason}{hint}"
        if isinstance(cause, socket.gaierror):
            return f"DNS failure: cannot resolve {urlsplit(url).hostname}"
        if isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED:  # one address or several, all refused
            return "connection refused"
        if isinstance(cause, OSError) and cause.errno == errno.ECONNRESET:
            return "connection reset by the server"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "bad HTTP answer: Server disconnected without sending a response."
    if isinstance(exc, aiohttp.ClientResponseError | aiohttp.ClientPayloadError):
        detail = exc.message if isinstance(exc, aiohttp.ClientResponseError) else str(exc)
        return f"bad HTTP answer: {_one_line(detail)[:100] or 'server disconnected'}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect: {str(exc)[:100]}"
    return f"request failed: {type(exc).__name__}"


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    node: BaseException | None = exc
    while node is not None and node not in seen:
        seen.append(node)
        node = node.__cause__ or node.__context__
    return seen


@functools.cache
def default_tls() -> ssl.SSLContext:
    """httpx's context, built once per process (tens of ms): the trust store (certifi, SSL_CERT_FILE) used before aiohttp."""
    return httpx.create_ssl_context()


def sockets_allowed(concurrency: int) -> int:
    """``health.concurrency``, lowered where the process may not open that many sockets (a 1,024 file limit, say)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return concurrency
    return max(1, min(concurrency, soft - SOCKETS_KEPT_FREE))


def _one_line(text: str) -> str:
    """aiohttp's parser errors on one line, without the caret line under the bad bytes."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip() and set(line.strip()) != {"^"})


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _tracing() -> aiohttp.TraceConfig:
    """aiohttp's request events, each moving the current request's ``Progress`` to what a person calls that step."""

    def moves_to(phase: str) -> Any:
        async def handler(session: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
            progress = _progress.get(None)
            if progress is not None:
                progress.phase = phase

        return handler

    tracing = aiohttp.TraceConfig()
    tracing.on_connection_create_start.append(moves_to("connecting"))
    tracing.on_connection_create_end.append(moves_to("sending the request"))
    tracing.on_connection_reuseconn.append(moves_to("sending the request"))
    tracing.on_request_headers_sent.append(moves_to("waiting for a response"))
    tracing.on_request_redirect.append(moves_to("connecting"))
    return tracing


def _socket(address: Any) -> socket.socket:
    """aiohttp's own socket, remembered by the request that made it (to tell a TCP stall from a TLS one)."""
    family, kind, proto, _, _ = address
    sock = socket.socket(family=family, type=kind, proto=proto)
    progress = _progress.get(None)
    if progress is not None:
        progress.sock = sock
    return sock


def _connected(sock: socket.socket | None) -> bool:
    try:
        return sock is not None and bool(sock.getpeername())
    except OSError:  # not connected yet, or already closed
        return False


def _env_proxy(url: str, proxies: dict[str, str]) -> str | None:
    """The proxy the environment names for ``url`` (as httpx honoured it), or None."""
    if not proxies:
        return None
    parts = urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):  # NO_PROXY
        return None
    return proxies.get(parts.scheme) or proxies.get("all")


class _Abandoned(ThreadPoolExecutor):
    """A thread pool whose shutdown never waits: a hung ``getaddrinfo`` finishes on its own, answering no one."""

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        super().shutdown(wait=False, cancel_futures=True)
