"""Real local HTTP servers for health tests: routes that answer well, slowly, wrongly, hugely, or never."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

Route = Callable[[BaseHTTPRequestHandler, threading.Event], None]


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops SYNs under a fan-out, and the client retries a second later


class StubServer:
    """An HTTP (or HTTPS) server on 127.0.0.1 and a free port; ``routes`` maps a path to its behaviour."""

    def __init__(self, routes: dict[str, Route] | None = None, *, tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.stopping = threading.Event()
        self.hits: dict[str, int] = {}
        self.headers_seen: list[dict[str, str]] = []
        self._guard = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                path = self.path.split("?", 1)[0]
                with stub._guard:
                    stub.hits[path] = stub.hits.get(path, 0) + 1
                    stub.headers_seen.append(dict(self.headers.items()))
                # The client may give up (read cap, timeout): that is the point of the test.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    stub.routes.get(path, not_found)(self, stub.stopping)

            do_GET = do_POST = do_HEAD = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.scheme = "https" if tls else "http"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str = "/health", scheme: str | None = None) -> str:
        return f"{scheme or self.scheme}://127.0.0.1:{self.port}{path}"

    def start(self) -> StubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def serving(routes: dict[str, Route] | None = None, *, tls: ssl.SSLContext | None = None) -> Iterator[StubServer]:
    server = StubServer(routes, tls=tls).start()
    try:
        yield server
    finally:
        server.stop()


def not_found(handler: BaseHTTPRequestHandler, stopping: threading.Event) -> None:
    _send(handler, 404, b"not found", "text/plain")


def _send(
    handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


def json_reply(body: Any, status: int = 200, delay: float = 0.0) -> Route:
    def route(handler: BaseHTTPRequestHandler, stopping: threading.Event) -> None:
        if delay:
            stopping.wait(delay)
        _send(handler, status, json.dumps(body).encode(), "application/json")

    return route


def text_reply(text: str, status: int = 200, content_type: str = "text/html; charset=utf-8") -> Route:
    def route(handler: BaseHTTPRequestHandler, stopping: threading.Event) -> None:
        _send(handler, status, text.encode(), content_type)

    return route


def redirect(to: str) -> Route:
    def route(handler: BaseHTTPRequestHandler, stopping: threading.Event) -> None:
        _send(handler, 302, b"", "text/plain", {"Location": to})

    return route


def huge(total_bytes: int, chunk: int = 64 * 1024) -> Route:
    """A JSON-looking body of ``total_bytes``, streamed so the server never holds it in memory."""

    def route(handler: BaseHTTPRequestHandler, stopping: threading.Event) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(total_bytes))
        handler.end_headers()
        block = b" " * chunk
        sent = 0
        while sent < total_bytes and not stopping.is_set():
            piece = block[: min(chunk, total_bytes - sent)]
            handler.wfile.write(piece)
            sent += len(piece)

    return route


def trickle(body: bytes, every: float = 1.0) -> Route:
    """Headers at once, then the body one byte every ``every`` seconds."""

    def route(handler: BaseHTTPRequestHandler, stopping: threading.Event) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        for i in range(len(body)):
            handler.wfile.write(body[i : i + 1])
            handler.wfile.flush()
            if stopping.wait(every):
                return

    return route


def hang(handler: BaseHTTPRequestHandler, stopping: threading.Event) -> None:
    """Read the request, then never answer (until the server stops)."""
    stopping.wait(60)


@contextmanager
def silent_listener() -> Iterator[int]:
    """A port whose kernel completes the TCP handshake but whose program never reads or answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@contextmanager
def raw_server(answer: Callable[[socket.socket], None]) -> Iterator[int]:
    """A port whose every connection, once the request arrives, gets ``answer(conn)``: raw bytes, a close, a reset."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # the listener closed: the test is over
            with conn:
                conn.recv(65536)
                answer(conn)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def reset(conn: socket.socket) -> None:
    """Abort the connection: the client sees a TCP reset, not a clean close."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


def self_signed_tls(directory: Path) -> ssl.SSLContext:
    """A server TLS context with a certificate for 127.0.0.1 that no client trusts."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "opsbot test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context


class Switch:
    """A route the test flips between a healthy answer and a 503."""

    def __init__(self, healthy: bool = True) -> None:
        self.healthy = healthy

    def __call__(self, handler: BaseHTTPRequestHandler, stopping: threading.Event) -> None:
        if self.healthy:
            _send(handler, 200, b'{"status": "healthy"}', "application/json")
        else:
            _send(handler, 503, b'{"status": "down"}', "application/json")
