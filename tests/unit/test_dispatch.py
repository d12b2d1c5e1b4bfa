"""The dispatcher: every transport gets the same checks, the same answers and the same audit rows."""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain import registry
from bot.domain.dispatch import Dispatcher
from bot.domain.shared.errors import Unavailable
from bot.domain.shared.messages import ErrorNotice, HelpMessage
from bot.domain.shared.policy import Actor
from tests.fakes import FakeAudit, FakeLocks, FakeNotifier, fake_services


@pytest.fixture
def dispatcher() -> Dispatcher:
    return Dispatcher(fake_services(), registry.subcommands(), registry.jobs())


def audit(dispatcher: Dispatcher) -> FakeAudit:
    return dispatcher.services.audit  # type: ignore[return-value]


def error_of(reply: Any) -> ErrorNotice:
    assert isinstance(reply.message, ErrorNotice), reply
    return reply.message


def test_empty_text_shows_help(dispatcher: Dispatcher) -> None:
    reply = dispatcher.run_text("   ", Actor("U0DEV", source="console"))
    assert isinstance(reply.message, HelpMessage)
    assert audit(dispatcher).entries[-1].action == "command.help" and audit(dispatcher).entries[-1].source == "console"


def test_denial_is_ephemeral_names_the_role_and_is_audited(dispatcher: Dispatcher) -> None:
    reply = dispatcher.run_text("unlock api production --reason x", Actor("U0DEV"))
    notice = error_of(reply)
    assert reply.visibility == "ephemeral" and notice.kind == "denied" and "*admin*" in notice.message
    entry = audit(dispatcher).entries[-1]
    assert (entry.action, entry.outcome, entry.actor) == ("command.unlock", "denied", "U0DEV")


def test_a_user_with_no_role_may_not_even_list(dispatcher: Dispatcher) -> None:
    notice = error_of(dispatcher.run_text("locks", Actor("U0NOBODY")))
    assert notice.kind == "denied" and "*viewer*" in notice.message


def test_usage_error_carries_the_usage_line(dispatcher: Dispatcher) -> None:
    notice = error_of(dispatcher.run_text("lock api", Actor("U0DEV")))
    assert notice.kind == "usage" and notice.usage == '/ops lock <service> <env> [for=1h] --reason "…"'
    assert audit(dispatcher).outcomes()[-1] == ("command.lock", "usage_error")


def test_mutating_command_leaves_started_then_outcome(dispatcher: Dispatcher) -> None:
    dispatcher.run_text('lock api production --reason "migration"', Actor("U0DEV"))
    assert audit(dispatcher).outcomes() == [("command.lock", "started"), ("command.lock", "ok")]
    assert audit(dispatcher).entries[-1].target == "api/production"
    assert audit(dispatcher).entries[-1].params["reason"] == "migration"


def test_mutating_command_is_refused_when_the_audit_log_is_down(dispatcher: Dispatcher) -> None:
    audit(dispatcher).down = True
    notice = error_of(dispatcher.run_text('lock api production --reason "migration"', Actor("U0DEV")))
    assert notice.kind == "unavailable" and "database" in notice.message.lower()
    assert dispatcher.services.locks.held() == []


def test_redis_down_gives_a_clear_message_and_changes_nothing(dispatcher: Dispatcher) -> None:
    locks: FakeLocks = dispatcher.services.locks  # type: ignore[assignment]
    locks.down = True
    notice = error_of(dispatcher.run_text('lock api production --reason x', Actor("U0DEV")))
    assert notice.message == "Redis is unreachable right now; nothing was changed. (ConnectionError)"
    assert audit(dispatcher).outcomes()[-1] == ("command.lock", "unavailable")


def test_unexpected_exception_gives_a_reference_not_a_traceback(dispatcher: Dispatcher) -> None:
    def explode(*_: Any) -> None:
        raise KeyError("secret internals")

    dispatcher.services.locks.held = explode  # type: ignore[method-assign]
    notice = error_of(dispatcher.run_text("locks", Actor("U0DEV")))
    assert notice.kind == "error" and notice.reference and "secret" not in notice.message
    assert audit(dispatcher).entries[-1].error == f"KeyError (ref {notice.reference})"


def test_unlock_tells_the_holder_and_survives_a_failed_dm(dispatcher: Dispatcher) -> None:
    dispatcher.run_text("lock api production --reason x", Actor("U0DEV"))
    notifier: FakeNotifier = dispatcher.services.notifier  # type: ignore[assignment]
    notifier.failing = True
    reply = dispatcher.run_text("unlock api production --reason 'stuck'", Actor("U0ADMIN"))
    assert reply.message.holder_told is False  # type: ignore[attr-defined]
    assert dispatcher.services.locks.held() == []


def test_audit_outage_after_a_read_only_command_still_answers(dispatcher: Dispatcher, caplog: pytest.LogCaptureFixture) -> None:
    audit(dispatcher).down = True
    reply = dispatcher.run_text("locks", Actor("U0DEV"))
    assert reply.outcome == "ok"
    assert "audit log unavailable" in caplog.text


def test_unknown_job_is_audited_as_failed(dispatcher: Dispatcher) -> None:
    dispatcher.run_job("nope", {})
    assert audit(dispatcher).outcomes()[-1] == ("job.nope", "failed")


def test_unavailable_is_typed() -> None:
    assert Unavailable("Redis").outcome == "unavailable"
