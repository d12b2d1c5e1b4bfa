"""The Home family's ports: where a view is published, who looked at Home lately, and what it reads."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from bot.domain.deploys.ports import DeploysUnitOfWork
from bot.domain.home.model import HomeNotice
from bot.domain.incidents.ports import IncidentsUnitOfWork
from bot.domain.shared.errors import OpsError
from bot.domain.shared.ports import Message


class HomeSurface(Protocol):
    """Slack's Home tab of one person (``views.publish``, https://docs.slack.dev/reference/methods/views.publish)."""

    def publish(self, user: str, view: Message) -> None:
        """Replace ``user``'s Home tab with ``view``. Raises ``Unavailable`` (Slack unreachable or rate limiting)
        or ``OpsError`` (Slack refused the view)."""
        ...


class HomeViewers(Protocol):
    """Who opened Home lately, the per-person publish window (debounce), and the notice answering a click.

    Every method raises ``Unavailable`` when the store (Redis) cannot be reached.
    """

    def seen(self, user: str, at: datetime) -> None:
        """``user`` opened Home at ``at``."""
        ...

    def recent(self, since: datetime) -> list[str]:
        """Everyone who opened Home at or after ``since`` (older entries are forgotten)."""
        ...

    def claim(self, user: str, seconds: float) -> bool:
        """Open ``user``'s publish window for ``seconds`` if none is open (True); False while one is."""
        ...

    def hold(self, user: str, seconds: float) -> None:
        """Open ``user``'s publish window for ``seconds`` whether or not one is open (a publish that could not wait)."""
        ...

    def release(self, user: str) -> None:
        """Close ``user``'s publish window (the publish it was opened for did not happen)."""
        ...

    def window_left(self, user: str) -> float:
        """Seconds until ``user``'s publish window closes (0 when none is open)."""
        ...

    def leave_notice(self, user: str, notice: HomeNotice, seconds: int) -> None:
        """Keep ``notice`` for ``user``'s next views for ``seconds``."""
        ...

    def notice(self, user: str) -> HomeNotice | None: ...

    def board_version(self) -> int:
        """How many times something Home shows was reported changed, in any process (0 at first)."""
        ...

    def bump_board_version(self) -> None:
        """Something Home shows changed: boards read before now are out of date."""
        ...


class HomeUnitOfWork(DeploysUnitOfWork, IncidentsUnitOfWork, Protocol):
    """What Home reads in one transaction: open incidents, pending approval requests, live deploys, freezes."""


class NobodyHome:
    """``HomeViewers`` where Home is not wired (unit tests of other families): nobody has opened it."""

    def seen(self, user: str, at: datetime) -> None:
        return None

    def recent(self, since: datetime) -> list[str]:
        return []

    def claim(self, user: str, seconds: float) -> bool:
        return True

    def hold(self, user: str, seconds: float) -> None:
        return None

    def release(self, user: str) -> None:
        return None

    def window_left(self, user: str) -> float:
        return 0.0

    def leave_notice(self, user: str, notice: HomeNotice, seconds: int) -> None:
        return None

    def notice(self, user: str) -> HomeNotice | None:
        return None

    def board_version(self) -> int:
        return 0

    def bump_board_version(self) -> None:
        return None


class NoHomeSurface:
    """``HomeSurface`` where Home is not wired: publishing says so."""

    def publish(self, user: str, view: Message) -> None:
        raise OpsError("The Home tab is not wired in this process.")
