"""Judging what a probe saw: status code, JSON body expectations, latency thresholds. Pure: no I/O.

The HTTP adapter only observes (status, body, latency, or a transport failure phrased for people);
every verdict a runbook would make by eye against `curl` output is made here, where it is tested
without a network.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from bot.config import HealthCheck
from bot.domain.health.model import CheckOutcome

Status = Literal["healthy", "degraded", "failed"]
RANK: dict[str, int] = {"healthy": 0, "degraded": 1, "failed": 2}
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\s]+")
_MISSING = object()


@dataclass(frozen=True)
class Observation:
    """What the transport saw for one request. ``error`` is a transport failure already phrased for
    people (``connection refused``, ``timeout after 2000 ms``); then the other fields may be empty."""

    latency_ms: float | None = None
    status_code: int | None = None
    body: bytes = b""
    content_type: str = ""
    truncated_at: int | None = None  # the read cap in bytes, when the body was longer
    error: str | None = None


def judge(check: HealthCheck, seen: Observation) -> CheckOutcome:
    """The verdict on one check: the first thing wrong wins, latency is judged last."""

    def outcome(status: Status, reason: str | None = None) -> CheckOutcome:
        return CheckOutcome(check.label, check.url, status, _rounded(seen.latency_ms), reason)

    if seen.error is not None:
        return outcome("failed", seen.error)
    if seen.status_code not in check.expect_status:
        expected = ", ".join(str(code) for code in check.expect_status)
        return outcome("failed", f"status {seen.status_code} (expected {expected})")
    if seen.truncated_at is not None:
        return outcome("failed", f"body larger than {_size(seen.truncated_at)}; stopped reading")
    if check.expect_json:
        problem = body_problem(seen.body, seen.content_type, check.expect_json)
        if problem:
            return outcome("failed", problem)
    latency = seen.latency_ms or 0.0
    if latency >= check.critical_ms:
        return outcome("failed", f"too slow: {latency:.0f} ms (critical at {check.critical_ms} ms)")
    if latency >= check.warn_ms:
        return outcome("degraded", f"slow: {latency:.0f} ms (warning at {check.warn_ms} ms)")
    return outcome("healthy")


def body_problem(body: bytes, content_type: str, expected: dict[str, Any]) -> str | None:
    """Why the JSON body does not meet ``expected`` (keys may be dotted paths), or None when it does."""
    document, problem = parse_json(body, content_type)
    if problem:
        return problem
    if not isinstance(document, dict):
        return f"JSON body is {_json_kind(document)}, expected an object"
    for key, want in expected.items():
        got = lookup(document, key)
        if got is _MISSING:
            return f"body has no `{key}`"
        if not _same(got, want):
            return f"body {key}={_show(got)} (expected {_show(want)})"
    return None


def parse_json(body: bytes, content_type: str) -> tuple[Any, str | None]:
    """The decoded JSON document, or a reason it is not one."""
    if not body.strip():
        return None, "empty body where JSON was expected"
    try:
        return json.loads(body), None
    except (ValueError, UnicodeDecodeError):
        kind = content_type.split(";", 1)[0].strip() or "no content type"
        return None, f"body is not JSON ({kind}: {snippet(body)})"


def lookup(document: dict[str, Any], key: str) -> Any:
    """``document[key]``, or along a dotted path (``checks.db.status``) when no such literal key exists."""
    if key in document:
        return document[key]
    node: Any = document
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def version_of(body: bytes, content_type: str, key: str) -> tuple[str | None, str | None]:
    """(version, None) from a version endpoint's body, or (None, why not). Plain-text bodies count as the version."""
    document, problem = parse_json(body, content_type)
    if problem:
        text = body.decode("utf-8", "replace").strip()
        if text and len(text) <= 128 and not _UNPRINTABLE.search(text) and not content_type.startswith("text/html"):
            return text, None
        return None, problem
    if isinstance(document, (str, int, float)) and not isinstance(document, bool):
        return str(document), None
    if not isinstance(document, dict):
        return None, f"JSON body is {_json_kind(document)}, expected an object"
    value = lookup(document, key)
    if value is _MISSING or value is None or isinstance(value, (dict, list)):
        return None, f"body has no `{key}`"
    return str(value)[:128], None


def overall(statuses: Iterable[str]) -> Status:
    """The worst of ``statuses``; healthy when there are none."""
    worst = max(statuses, key=lambda s: RANK[s], default="healthy")
    return worst  # type: ignore[return-value]


def snippet(body: bytes, limit: int = 40) -> str:
    """The start of ``body`` as one printable line."""
    text = _UNPRINTABLE.sub(" ", body[: limit * 4].decode("utf-8", "replace")).strip()
    return (text[:limit] + "…") if len(text) > limit else (text or "empty")


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want
    if isinstance(want, str) and isinstance(got, (int, float)):
        return str(got) == want
    return bool(got == want)


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 60 else text[:60] + "…"


def _json_kind(document: Any) -> str:
    return {list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(type(document), "a number")


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MB" if n >= 1024 * 1024 and n % (1024 * 1024) == 0 else f"{n // 1024} KB"


def _rounded(latency: float | None) -> float | None:
    return None if latency is None else round(latency, 1)
