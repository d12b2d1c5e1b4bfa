"""Riding out a short outage: an action that needs the database (or Redis) is tried again, with backoff, until it is back."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential_jitter
from tenacity.stop import stop_base

from bot.domain.shared.errors import Unavailable

T = TypeVar("T")
log = logging.getLogger("opsbot.retry")


def until_back(action: Callable[[], T], *, within: float, what: str, give_up: Callable[[], bool] | None = None) -> T:
    """``action()``, again while it raises ``Unavailable``: after 0.25 s, doubling with jitter up to 5 s, for at most
    ``within`` seconds, or until ``give_up()`` is true (the process is shutting down: the reconciler finishes the
    work); then the last ``Unavailable`` is raised. ``what`` names the action in the log."""

    def note(state: object) -> None:
        outcome = getattr(state, "outcome", None)
        error = outcome.exception() if outcome is not None else None
        log.warning("%s: %s; trying again", what, error)

    for attempt in Retrying(
        retry=retry_if_exception_type(Unavailable),
        wait=wait_exponential_jitter(multiplier=0.25, max=5, jitter=0.25),
        stop=stop_after_delay(within) | _GiveUp(give_up),
        reraise=True,
        before_sleep=note,
    ):
        with attempt:
            return action()
    raise AssertionError("unreachable: Retrying either returns or raises")


class _GiveUp(stop_base):
    """Stop retrying once ``give_up()`` is true (never, without one)."""

    def __init__(self, give_up: Callable[[], bool] | None) -> None:
        self._give_up = give_up

    def __call__(self, retry_state: object) -> bool:
        return self._give_up is not None and self._give_up()
