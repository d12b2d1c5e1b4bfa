"""Logging for every `opsbot` process: one JSON object a line (``LOG_FORMAT=json``) or lines for people (``console``).

Built on structlog's ``ProcessorFormatter`` over the standard library's logging, so opsbot's loggers, Bolt's,
slack_sdk's and gunicorn's all come out the same way. A request's fields (trigger id, user, command or action,
outcome, duration) travel in ``extra={"opsbot": {...}}`` and become keys of the JSON object. Every line is scrubbed
of the process's secrets before it is written, whatever logged it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import structlog

SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "API_KEY", "PRIVATE_KEY")
REDACTED = "[redacted]"


def default_format(stream: Any = None) -> str:
    """``console`` when a person is watching (stderr is a terminal), ``json`` otherwise."""
    stream = stream or sys.stderr
    return "console" if hasattr(stream, "isatty") and stream.isatty() else "json"


def secrets_of(environ: dict[str, str] | None = None, extra: Iterable[str | None] = ()) -> list[str]:
    """Values never to be written: every environment variable whose name says it is a secret, the database URL's
    password, and ``extra``. Short values are left out (redacting ``1`` would garble every line)."""
    environ = dict(os.environ) if environ is None else environ
    found = [value for name, value in environ.items() if any(word in name.upper() for word in SECRET_WORDS)]
    for name in ("DATABASE_URL", "REDIS_URL"):
        if environ.get(name):
            with contextlib.suppress(ValueError):
                found.append(urlsplit(environ[name]).password or "")
    found.extend(value or "" for value in extra)
    return sorted({value for value in found if len(value) >= 6}, key=len, reverse=True)


def _request_fields(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    record = event.get("_record")
    fields = getattr(record, "opsbot", None)
    if isinstance(fields, dict):
        event.update({key: value for key, value in fields.items() if value is not None})
    return event


class RedactingFormatter(structlog.stdlib.ProcessorFormatter):
    """structlog's formatter, with the process's secrets replaced in the finished line (tracebacks included)."""

    def __init__(self, *args: Any, secrets: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        for secret in self._secrets:
            line = line.replace(secret, REDACTED)
        return line


def setup_logging(level: str, log_format: str | None = None, *, secrets: Iterable[str | None] = ()) -> None:
    """Send every logger's records to stderr as ``log_format`` (``json`` or ``console``; None: ``default_format()``)."""
    log_format = log_format or default_format()
    pre_chain: list[Any] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _request_fields,
    ]
    if log_format == "json":
        renderer: Any = structlog.processors.JSONRenderer()
        pre_chain.append(structlog.processors.format_exc_info)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    formatter = RedactingFormatter(
        foreign_pre_chain=pre_chain,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        secrets=secrets_of(extra=secrets),
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
