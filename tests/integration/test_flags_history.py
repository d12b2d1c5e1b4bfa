"""opsbot's flag history on SQLite and PostgreSQL: changes are recorded with old → new and who; changes to one flag take turns.

(tests/integration/test_migrations.py checks that migration 0003_flags builds exactly these tables.)
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine

from bot.adapters.sql.engine import create_db_engine
from bot.adapters.sql.unit_of_work import SqlUnitOfWork
from bot.domain.flags.model import FlagChange, FlagState
from tests.support import autocommit


class History:
    """The flag history as the flags family uses it: a change decided and recorded under the head row's lock."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.reads = autocommit(engine, "flag_history")

    def record_change(self, provider: str, flag: str, env: str, apply: Callable[[FlagChange | None], FlagChange]) -> FlagChange:
        with SqlUnitOfWork(self.engine) as uow:
            last = uow.flag_history.lock_head(provider, flag, env)
            made = apply(last)
            uow.flag_history.add(made)
            uow.commit()
        return made

    def __getattr__(self, name: str) -> Any:
        return getattr(self.reads, name)


def change(last: FlagChange | None, flag: str = "search", env: str = "production", actor: str = "U0DEV") -> FlagChange:
    before = last.after if last else FlagState(True, False, 10)
    return FlagChange(
        id=secrets.token_hex(8),
        provider="sql",
        flag=flag,
        environment=env,
        action="rollout",
        actor=actor,
        reason="r",
        before=before,
        after=before.with_(rollout=(before.rollout or 0) + 10),
        at=datetime(2026, 11, 23, 14, 0, tzinfo=UTC),
        approved_by=("U0APPROVER1",),
    )


def test_changes_are_recorded_with_old_new_who_and_read_back(db_url: str) -> None:
    history = History(create_db_engine(db_url))
    first = history.record_change("sql", "search", "production", lambda last: change(last))
    second = history.record_change("sql", "search", "production", lambda last: change(last, actor="U0DEV2"))
    history.record_change("sql", "search", "staging", lambda last: change(last, env="staging"))
    assert first is not None and second is not None and second.before == first.after
    assert history.latest("sql", ["search", "other"])[("search", "production")] == second
    assert [c.id for c in history.recent("sql", "search", limit=2)][1] == second.id
    history.attach_message(first.id, "C0ALERTS", "1.2")
    assert history.get(first.id).message_ts == "1.2"  # type: ignore[union-attr]
    assert history.latest("unleash", ["search"]) == {}


def test_nothing_is_recorded_when_the_change_fails(db_url: str) -> None:
    history = History(create_db_engine(db_url))

    def failing(last: FlagChange | None) -> FlagChange:
        raise RuntimeError("provider down")

    with contextlib.suppress(RuntimeError):
        history.record_change("sql", "search", "production", failing)
    assert history.latest("sql", ["search"]) == {} and history.recent("sql", "search") == []


def test_two_changes_to_one_flag_take_turns_and_the_later_sees_the_earlier(db_url: str) -> None:
    history = History(create_db_engine(db_url))
    a_inside, release, b_inside = threading.Event(), threading.Event(), threading.Event()
    seen_by_b: list[FlagChange | None] = []

    def apply_a(last: FlagChange | None) -> FlagChange:
        a_inside.set()
        release.wait(10)
        return change(last, actor="U0DEV")

    def apply_b(last: FlagChange | None) -> FlagChange:
        b_inside.set()
        seen_by_b.append(last)
        return change(last, actor="U0DEV2")

    a = threading.Thread(target=lambda: history.record_change("sql", "search", "production", apply_a))
    a.start()
    assert a_inside.wait(5)
    b = threading.Thread(target=lambda: history.record_change("sql", "search", "production", apply_b))
    b.start()
    assert not b_inside.wait(0.5), "the second change ran while the first held the flag"
    release.set()
    a.join(10)
    b.join(10)
    assert seen_by_b[0] is not None and seen_by_b[0].actor == "U0DEV"
    assert [c.actor for c in history.recent("sql", "search")] == ["U0DEV2", "U0DEV"]
