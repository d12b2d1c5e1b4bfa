"""The dispatcher: every transport gets the same checks, the same answers and the same audit rows."""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain.shared.errors import Unavailable
from bot.domain.shared.messages import ErrorNotice, HelpMessage
from bot.domain.shared.policy import Actor
from tests.fakes import FakeAudit, FakeLocks, FakeNotifier, World, fake_world


@pytest.fixture
def world() -> World:
    return fake_world()


def audit(world: World) -> FakeAudit:
    return world.audit  # type: ignore[no-any-return]


def error_of(reply: Any) -> ErrorNotice:
    assert isinstance(reply.message, ErrorNotice), reply
    return reply.message


def test_empty_text_shows_help(world: World) -> None:
    reply = world.dispatcher.run_text("   ", Actor("U0DEV", source="console"))
    assert isinstance(reply.message, HelpMessage)
    assert audit(world).entries[-1].action == "command.help" and audit(world).entries[-1].source == "console"


def test_denial_is_ephemeral_names_the_role_and_is_audited(world: World) -> None:
    reply = world.dispatcher.run_text("unlock api production --reason x", Actor("U0DEV"))
    notice = error_of(reply)
    assert reply.visibility == "ephemeral" and notice.kind == "denied" and "*admin*" in notice.message
    entry = audit(world).entries[-1]
    assert (entry.action, entry.outcome, entry.actor) == ("command.unlock", "denied", "U0DEV")


def test_a_user_with_no_role_may_not_even_list(world: World) -> None:
    notice = error_of(world.dispatcher.run_text("locks", Actor("U0NOBODY")))
    assert notice.kind == "denied" and "*viewer*" in notice.message


def test_usage_error_carries_the_usage_line(world: World) -> None:
    notice = error_of(world.dispatcher.run_text("lock api", Actor("U0DEV")))
    assert notice.kind == "usage" and notice.usage == '/ops lock <service> <env> [for=1h] --reason "…" [--dry-run]'
    assert audit(world).outcomes()[-1] == ("command.lock", "usage_error")


def test_mutating_command_leaves_started_then_outcome(world: World) -> None:
    world.dispatcher.run_text('lock api production --reason "migration"', Actor("U0DEV"))
    assert audit(world).outcomes() == [("command.lock", "started"), ("command.lock", "ok")]
    assert audit(world).entries[-1].target == "api/production"
    assert audit(world).entries[-1].params["reason"] == "migration"


def test_mutating_command_is_refused_when_the_audit_log_is_down(world: World) -> None:
    audit(world).down = True
    notice = error_of(world.dispatcher.run_text('lock api production --reason "migration"', Actor("U0DEV")))
    assert notice.kind == "unavailable" and "database" in notice.message.lower()
    assert world.locks.held() == []


def test_redis_down_gives_a_clear_message_and_changes_nothing(world: World) -> None:
    locks: FakeLocks = world.locks  # type: ignore[assignment]
    locks.down = True
    notice = error_of(world.dispatcher.run_text("lock api production --reason x", Actor("U0DEV")))
    assert notice.message == "Redis is unreachable right now; nothing was changed. (ConnectionError)"
    assert audit(world).outcomes()[-1] == ("command.lock", "unavailable")


def test_unexpected_exception_gives_a_reference_not_a_traceback(world: World) -> None:
    def explode(*_: Any) -> None:
        raise KeyError("secret internals")

    world.locks.held = explode  # type: ignore[method-assign]
    notice = error_of(world.dispatcher.run_text("locks", Actor("U0DEV")))
    assert notice.kind == "error" and notice.reference and "secret" not in notice.message
    assert audit(world).entries[-1].error == f"KeyError (ref {notice.reference})"


def test_unlock_tells_the_holder_and_survives_a_failed_dm(world: World) -> None:
    world.dispatcher.run_text("lock api production --reason x", Actor("U0DEV"))
    notifier: FakeNotifier = world.notifier  # type: ignore[assignment]
    notifier.failing = True
    reply = world.dispatcher.run_text("unlock api production --reason 'stuck'", Actor("U0ADMIN"))
    assert reply.message.holder_told is False  # type: ignore[attr-defined]
    assert world.locks.held() == []


def test_audit_outage_after_a_read_only_command_still_answers(world: World, caplog: pytest.LogCaptureFixture) -> None:
    audit(world).down = True
    reply = world.dispatcher.run_text("locks", Actor("U0DEV"))
    assert reply.outcome == "ok"
    assert "audit log unavailable" in caplog.text


def test_unknown_job_is_audited_as_failed(world: World) -> None:
    world.dispatcher.run_job("nope", {})
    assert audit(world).outcomes()[-1] == ("job.nope", "failed")


def test_unavailable_is_typed() -> None:
    assert Unavailable("Redis").outcome == "unavailable"


def test_help_on_a_blank_quoted_topic_is_the_general_help(world: World) -> None:
    reply = world.dispatcher.run_text('help " "', Actor("U0DEV"))
    assert isinstance(reply.message, HelpMessage)
