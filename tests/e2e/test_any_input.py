"""Any text after any `/ops` subcommand, and any value on any button, through the real app: the answer is the command's
own or an error that says what is wrong, never "Something went wrong", and nothing is logged as an error.

The app runs in this process on SQLite, then PostgreSQL, with an in-process Redis (fakeredis) and in-process jobs, talking
to the Slack emulator on loopback: no other network.
"""

from __future__ import annotations

import logging
import secrets
import shutil
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.console import payloads
from bot.console.slack_emulator import SlackEmulator
from bot.domain.shared.commands import Subcommand
from bot.wiring import embedded_redis
from handlers.alerts import AlertAction
from handlers.approvals import ApprovalAction
from handlers.audit import AuditAction
from handlers.deploys import DeployAction
from handlers.flags import FlagAction
from handlers.health import HealthAction
from handlers.incidents import IncidentAction
from tests.hostile_text import TRICKY
from tests.support import OPS_CHANNEL, USERS, Bot, make_config, start_emulator

BUTTONS: list[type[StrEnum]] = [AlertAction, ApprovalAction, AuditAction, DeployAction, FlagAction, HealthAction, IncidentAction]
WORD = st.one_of(st.sampled_from(TRICKY), st.text(max_size=12))


def _admin(url: str, statement: str) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(statement))
    engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    """One bot for every example of a test: SQLite or PostgreSQL, fakeredis, in-process jobs and the emulator."""
    config = make_config()
    emulator: SlackEmulator = start_emulator(config)
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("any-input") / "opsbot.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        db_url, drop = f"sqlite:///{path}", None
    else:
        admin, name = request.getfixturevalue("pg_admin_url"), f"opsbot_any_{secrets.token_hex(4)}"
        _admin(admin, f'CREATE DATABASE "{name}" TEMPLATE "{request.getfixturevalue("pg_template")}"')
        db_url, drop = sa.engine.make_url(admin).set(database=name).render_as_string(hide_password=False), (admin, name)
    bot = Bot(emulator=emulator, db_url=db_url, redis_client=embedded_redis(), prefix="any:", config=config)
    yield bot
    bot.close()
    emulator.stop()
    if drop:
        _admin(drop[0], f'DROP DATABASE IF EXISTS "{drop[1]}" WITH (FORCE)')


@pytest.fixture(autouse=True)
def _close_bots() -> Iterator[None]:
    """The module's one bot outlives each test (conftest's fixture of the same name closes bots per test)."""
    yield


def subcommands(bot: Bot) -> list[Subcommand[Any]]:
    return list(bot.services.families.dispatcher.subcommands)


def arguments(spec: Subcommand[Any]) -> st.SearchStrategy[str]:
    own = [f"--{o}" for o in sorted(spec.options | spec.flags)] + [f"{k}=" for k in sorted(spec.keys)]
    word = st.one_of(WORD, st.sampled_from(own)) if own else WORD
    joined = st.lists(st.tuples(word, st.sampled_from(["", "", "", '"', "\u2018", "'"])), max_size=6)
    return joined.map(lambda parts: " ".join(f"{q}{w}{q if q != chr(0x2018) else chr(0x2019)}" for w, q in parts))


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_text_after_any_subcommand_gets_its_answer_or_a_usage_error(
    app: Bot, caplog: pytest.LogCaptureFixture, data: st.DataObject
) -> None:
    spec = data.draw(st.sampled_from(subcommands(app)), label="subcommand")
    text = f"{spec.name} {data.draw(arguments(spec), label='arguments')}"
    user = data.draw(st.sampled_from(["U0ADMIN", "U0DEV"]), label="user")
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        reply = app.command(text, user=user, channel=OPS_CHANNEL)
    assert "Something went wrong" not in reply.seen(), (text, reply.seen())
    assert errors_logged(caplog) == [], text


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    action=st.sampled_from([a for enum in BUTTONS for a in enum]),
    value=st.one_of(st.sampled_from(TRICKY), st.text(max_size=40), st.from_regex(r"[0-9a-z.:-]{1,30}", fullmatch=True)),
    user=st.sampled_from(sorted(USERS)),
)
def test_any_value_on_any_button_gets_an_answer_and_logs_no_error(
    app: Bot, caplog: pytest.LogCaptureFixture, action: str, value: str, user: str
) -> None:
    url = app.emulator.response_url(OPS_CHANNEL, user, "1700000000.000100")
    body = payloads.block_action(
        user_id=user,
        channel_id=OPS_CHANNEL,
        message_ts="1700000000.000100",
        action={"action_id": str(action), "value": value, "block_id": "b"},
        response_url=url,
        trigger_id=app.emulator.trigger_id(),
    )
    views = len(app.emulator.views)
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert app.dispatch(body).status == 200
        answers = app.emulator.wait_for(lambda: app.emulator.responses(url) or app.emulator.views[views:], 5.0)
    seen = " ".join(str(a.args.get("text", "")) for a in answers if hasattr(a, "args"))
    assert "Something went wrong" not in seen, (action, value, seen)
    assert errors_logged(caplog) == [], (action, value)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    block_id=st.one_of(st.sampled_from(TRICKY), st.text(max_size=40)).map(lambda v: f"checklist-{v}"),
    position=st.integers(min_value=0, max_value=99),
    ticked=st.booleans(),
    user=st.sampled_from(sorted(USERS)),
)
def test_any_checklist_checkbox_click_gets_an_answer_and_logs_no_error(
    app: Bot, caplog: pytest.LogCaptureFixture, block_id: str, position: int, ticked: bool, user: str
) -> None:
    url = app.emulator.response_url(OPS_CHANNEL, user, "1700000000.000100")
    option = {"text": {"type": "plain_text", "text": "Backup created"}, "value": block_id.removeprefix("checklist-")}
    action = {"type": "checkboxes", "action_id": f"approval_check_{position}", "block_id": block_id}
    body = payloads.block_action(
        user_id=user,
        channel_id=OPS_CHANNEL,
        message_ts="1700000000.000100",
        action={**action, "selected_options": [option] if ticked else []},
        response_url=url,
        trigger_id=app.emulator.trigger_id(),
    )
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert app.dispatch(body).status == 200
        answers = app.emulator.wait_for(lambda: app.emulator.responses(url), 5.0)
    seen = " ".join(str(a.args.get("text", "")) for a in answers)
    assert "Something went wrong" not in seen, (block_id, seen)
    assert errors_logged(caplog) == [], block_id
