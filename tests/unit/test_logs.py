"""LOG_FORMAT: one JSON object a line with a request's fields, lines for people, and secrets scrubbed from both."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from bot.logs import default_format, setup_logging


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers, root.level = handlers, level


def test_json_lines_carry_a_requests_fields(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO", "json")
    fields = {
        "kind": "command",
        "command": "deploy",
        "trigger_id": "1.2.local",
        "user": "U0DEV",
        "outcome": "ok",
        "duration_ms": 12.5,
    }
    logging.getLogger("opsbot.requests").info("command deploy by U0DEV: ok", extra={"opsbot": fields})
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert {k: line[k] for k in fields} == fields
    assert line["event"] == "command deploy by U0DEV: ok" and line["level"] == "info" and line["logger"] == "opsbot.requests"


def test_console_lines_are_for_people(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO", "console")
    logging.getLogger("opsbot.requests").info("command locks by U0DEV: ok", extra={"opsbot": {"outcome": "ok"}})
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "command locks by U0DEV: ok" in line and "outcome=ok" in line and not line.startswith("{")


def test_a_secret_logged_by_anyone_is_scrubbed_even_from_a_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s3cret-signing-value")
    monkeypatch.setenv("DATABASE_URL", "postgresql://opsbot:db-pa55word@db/opsbot")
    setup_logging("INFO", "json", secrets=["xoxb-given-token"])
    log = logging.getLogger("some.library")
    log.warning("connecting to postgresql://opsbot:db-pa55word@db/opsbot with xoxb-given-token")
    try:
        raise RuntimeError("bad signature s3cret-signing-value")
    except RuntimeError:
        log.exception("failed")
    out = capsys.readouterr().err
    assert "db-pa55word" not in out and "xoxb-given-token" not in out and "s3cret-signing-value" not in out
    assert out.count("[redacted]") >= 3


def test_json_is_the_default_unless_a_person_watches() -> None:
    class Terminal:
        def isatty(self) -> bool:
            return True

    class Pipe:
        def isatty(self) -> bool:
            return False

    assert (default_format(Terminal()), default_format(Pipe())) == ("console", "json")
