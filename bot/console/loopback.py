"""The console's HTTP servers on loopback (the Slack emulator, the demo services): served on a thread, stopped at once."""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import ThreadingHTTPServer


class LoopbackServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` whose ``stop()`` returns in about a millisecond, not a poll interval."""

    daemon_threads = True

    def start(self, name: str) -> None:
        """Serve on a daemon thread called ``name``."""
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True).start()

    def stop(self) -> None:
        """Stop serving and close the listening socket; call once, after ``start()``.

        ``shutdown()`` only sets a flag that the serving loop reads when its select() returns: a connection
        wakes it, the loop sees the flag and returns without taking the connection. Without it, every console
        run waited for the poll interval to run out at exit (25 ms on average here, 50 ms for the demo services).
        """
        host, port = self.server_address[:2]
        address = (host.decode() if isinstance(host, bytes | bytearray) else host, port)
        stopping = threading.Thread(target=self.shutdown, name="loopback-stop", daemon=True)
        stopping.start()
        while stopping.is_alive():
            with contextlib.suppress(OSError):
                socket.create_connection(address, timeout=0.2).close()
            stopping.join(0.002)
        self.server_close()
