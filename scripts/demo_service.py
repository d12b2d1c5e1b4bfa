#!/usr/bin/env python3
"""The pretend service of the console demo: its health and the version scripts/demo_deploy.py installed.

usage: demo_service.py PORT STATE_DIR

GET /<service>/<environment>/health  → 200 {"status": "healthy"}, or 503 while the version contains "broken"
GET /<service>/<environment>/version → {"version": "<the installed version>"}
It exits after ten minutes without a request; STATE_DIR/service.pid holds its process id.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

IDLE_SECONDS = 600


def main() -> None:
    port, state = int(sys.argv[1]), Path(sys.argv[2])
    last_request = [time.monotonic()]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            last_request[0] = time.monotonic()
            if self.path == "/ping":
                return self._send(200, b"opsbot-demo-service", "text/plain")
            parts = self.path.strip("/").split("/")
            if len(parts) != 3 or parts[2] not in {"health", "version"}:
                return self._send(404, b'{"error": "not found"}')
            service, environment, what = parts
            installed = state / f"{service}-{environment}.version"
            version = installed.read_text().strip() if installed.exists() else "none"
            if what == "version":
                return self._send(200, json.dumps({"version": version}).encode())
            if "broken" in version:
                return self._send(503, json.dumps({"status": "failing", "error": "checkout answers 500"}).encode())
            return self._send(200, json.dumps({"status": "healthy"}).encode())

        def _send(self, code: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    (state / "service.pid").write_text(str(os.getpid()))  # so whoever started it can stop it
    threading.Thread(target=server.serve_forever, daemon=True).start()
    while time.monotonic() - last_request[0] < IDLE_SECONDS:
        time.sleep(5)
    server.shutdown()


if __name__ == "__main__":
    main()
