"""bot/adapters: the technology behind each port (SQL, Redis, Slack, HTTP providers)."""

from __future__ import annotations

import sys


def _import_httpx_without_its_cli() -> None:
    """Import httpx without its command-line client, which opsbot never runs.

    httpx imports the client whenever click, rich and pygments are installed (rq brings click; the others come
    with development tools): about 70 ms of `opsbot console`'s start-up (bench/console_startup.py). ``None``
    in sys.modules makes that one import fail, so httpx keeps its stub ``main``; the entry is removed afterwards.
    Every module that imports httpx is an adapter, so this runs before any of them.
    """
    if "httpx" in sys.modules:
        return
    sys.modules["httpx._main"] = None  # type: ignore[assignment]
    try:
        import httpx  # noqa: F401
    finally:
        if "httpx._main" in sys.modules and sys.modules["httpx._main"] is None:
            del sys.modules["httpx._main"]


_import_httpx_without_its_cli()
