"""Home as the app sees it: publish a person's Home when they open it or click on it, refresh recent viewers when
something Home shows changes, at most one automatic ``views.publish`` per person per ``DEBOUNCE_SECONDS``.

The refresh hook is ``ChangeWatcher``: the dispatcher's request observer, told about every request it ran (commands,
clicks, forms, jobs) after that request committed. A finished request that changes something Home shows submits one
keyed job, ``home.changed``: a burst of changes while it waits is one fan-out. The fan-out reads the board once and,
for each recent viewer, publishes now if their window is free (Redis ``SET NX PX``) or schedules one trailing
``home.refresh`` for when it closes (keyed per person: many changes in a window, one trailing refresh).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.domain.approvals.messages import VoteReceipt
from bot.domain.approvals.model import ApprovalState, Decision
from bot.domain.home import model
from bot.domain.home.deps import HomeDeps
from bot.domain.home.messages import HomeView
from bot.domain.home.model import Board, FreezeRow, HomeNotice, Viewer
from bot.domain.shared.errors import OpsError, Unavailable
from bot.domain.shared.family import Family, JobSpec
from bot.domain.shared.messages import ErrorNotice
from bot.domain.shared.policy import Actor, Role
from bot.domain.shared.ports import AuditQuery, Reply

log = logging.getLogger("opsbot.home")

CHANGED_JOB = "home.changed"
REFRESH_JOB = "home.refresh"
# Outcomes after which nothing Home shows changed: failures, refusals, and answers that only say what would happen.
UNCHANGED = frozenset(
    {"failed", "usage_error", "denied", "not_found", "conflict", "unavailable", "error", "dry_run", "frozen", "unchanged"}
)
ICONS = {"usage": "❓", "denied": "⛔", "not_found": "🔎", "conflict": "🔒", "unavailable": "⚠️", "error": "💥"}


class HomeService:
    """Publishing Home: on open, after a click on it, and for recent viewers when what it shows changed."""

    def __init__(self, deps: HomeDeps) -> None:
        self._d = deps
        self._board_lock = threading.Lock()
        self._cached: tuple[int, Board] | None = None  # (board version it was read at, the board)

    def family(self) -> Family:
        # Not audited: they only read and publish; the change that caused them is audited where it happened.
        return Family(
            "home",
            jobs=[JobSpec(CHANGED_JOB, self.fan_out, audited=False), JobSpec(REFRESH_JOB, self.refresh, audited=False)],
        )

    # ----- the edges' calls -----
    def opened(self, actor: Actor) -> bool:
        """``app_home_opened``: publish ``actor``'s Home, unless it was published less than ``DEBOUNCE_SECONDS`` ago
        (what changed since has its own refresh on the way). True when published. Redis away: published anyway,
        marked as not refreshing by itself. Raises ``Unavailable``/``OpsError`` when Slack would not take it."""
        d, user = self._d, actor.user_id
        refreshing = True
        try:
            d.viewers.seen(user, d.clock.now())
            if not d.viewers.claim(user, model.DEBOUNCE_SECONDS):
                return False
        except Unavailable:
            refreshing = False
        try:
            self._publish(user, self.shared_board(), refreshing=refreshing)
        except OpsError:
            self._release(user)
            raise
        return True

    def clicked(self, actor: Actor, reply: Reply) -> None:
        """A button on Home was answered with ``reply`` (a view has no response URL): ``actor``'s Home is published at
        once with the answer on top, kept there for ``NOTICE_SECONDS``. When Home cannot be published, the answer
        goes by DM. Never raises for Slack or Redis."""
        d, user = self._d, actor.user_id
        notice = notice_of(reply)
        try:
            d.viewers.leave_notice(user, notice, model.NOTICE_SECONDS)
            d.viewers.hold(user, model.DEBOUNCE_SECONDS)  # the person is waiting: this publish does not wait its turn
        except Unavailable:
            pass
        try:
            self._publish(user, self.shared_board(), notice=notice)
        except OpsError as exc:
            log.warning("could not publish the Home of %s after a click (%s); answering by DM", user, exc.message)
            try:
                d.notifier.dm(user, reply.message)
            except OpsError as dm_failed:
                log.error("could not answer %s's click on Home by DM either: %s", user, dm_failed.message)

    def changed(self) -> None:
        """Something Home shows changed: boards read before are out of date, and one fan-out job (a burst of changes
        while it waits is one fan-out). Raises ``Unavailable`` when Redis is away."""
        self._d.viewers.bump_board_version()
        self._d.jobs.submit(CHANGED_JOB, {}, key="home:changed")

    def shows_change(self, action: str, outcome: str) -> bool:
        """Whether a finished request may have changed what Home shows: a `/ops` subcommand that changes something,
        or any click, form or job (reads, failures, refusals and dry runs change nothing)."""
        if outcome in UNCHANGED:
            return False
        if action.startswith("command."):
            return action in self._d.mutating
        return action.startswith(("click.", "modal.", "job."))

    # ----- jobs -----
    def fan_out(self, actor: Actor, payload: dict[str, Any]) -> None:
        """``home.changed``: publish every recent viewer whose window is free; a trailing refresh for the others."""
        d = self._d
        viewers = d.viewers.recent(d.clock.now() - model.VIEWERS_FOR)
        board: Board | None = None
        for user in viewers:
            if not d.viewers.claim(user, model.DEBOUNCE_SECONDS):
                self._trail(user)
                continue
            board = board or self.shared_board()
            try:
                self._publish(user, board)
            except OpsError as exc:
                log.warning("could not refresh the Home of %s: %s", user, exc.message)
                self._release(user)

    def refresh(self, actor: Actor, payload: dict[str, Any]) -> None:
        """``home.refresh``: the trailing refresh of one person, once their window has closed."""
        user = str(payload["user"])
        if not self._d.viewers.claim(user, model.DEBOUNCE_SECONDS):
            self._trail(user)  # published meanwhile (their own click); changes may have come after it
            return
        try:
            self._publish(user, self.shared_board())
        except OpsError as exc:
            log.warning("could not refresh the Home of %s: %s", user, exc.message)
            self._release(user)

    # ----- reading and building -----
    def shared_board(self) -> Board:
        """The board, read once for everyone who needs it while nothing changed: reused while the board version
        (bumped by ``changed`` in any process) is the one it was read at and it is younger than ``BOARD_MAX_AGE``
        (what changes without a request: a lock running out, a freeze window starting). One reader at a time: the
        others wait for its board instead of reading their own. Redis away: read for each caller."""
        try:
            version = self._d.viewers.board_version()
        except Unavailable:
            return self.board()
        with self._board_lock:
            cached = self._cached
            if cached and cached[0] == version and self._d.clock.now() - cached[1].read_at < model.BOARD_MAX_AGE:
                return cached[1]
            board = self.board()
            self._cached = (version, board) if not board.unavailable else None
            return board

    def board(self) -> Board:
        """What everyone sees, read now; a part that cannot be read is named in ``unavailable``, the rest is shown."""
        d = self._d
        now = d.clock.now()
        unavailable: list[str] = []
        incidents, requests, deploys, freezes = [], [], [], []
        try:
            with d.uow() as uow:
                incidents = sorted(uow.incidents.open_incidents(), key=lambda i: (i.severity, i.declared_at))
                for pending in uow.approvals.pending():
                    found = uow.approvals.get(pending.id)
                    if found is not None and found[0].state is ApprovalState.PENDING and now < found[0].expires_at:
                        request, votes = found
                        posted = uow.outbox.posted(request.message_key)  # Home links to it (a checklist is ticked there)
                        if posted is not None:
                            request = replace(request, channel=posted.channel, message_ts=posted.ts)
                        requests.append((request, votes))
                for service, spec in d.config.services.items():
                    for environment in spec.environments:
                        live = uow.deploys.live(service, environment)
                        if live is not None and live.state in model.IN_PROGRESS:
                            deploys.append(live)
                freezes = [FreezeRow(f.target, f.ends_at, f.reason, f.created_by) for f in uow.deploys.active_freezes(now)]
        except Unavailable as exc:
            unavailable.append(f"Incidents, approvals, deploys and freezes: {exc.what} is unreachable right now")
        windows = [
            FreezeRow(env, window.ends_after(now), f"freeze window {window.text}", None)
            for env, policy in d.config.environments.items()
            for window in policy.freeze_windows
            if window.contains(now)
        ]
        locks = []
        try:
            locks = sorted(d.locks.held(), key=lambda lock: lock.name)
        except Unavailable as exc:
            unavailable.append(f"Deploy locks: {exc.what} is unreachable right now")
        kills = []
        try:
            since = now - model.KILLS_WITHIN
            killed = d.audit.query(AuditQuery(action_prefix="flag.kill", since=since, limit=50))
            unkilled = d.audit.query(AuditQuery(action_prefix="flag.unkill", since=since, limit=50)) if killed else []
            kills = model.kills_from(killed, unkilled)
        except Unavailable as exc:
            unavailable.append(f"Flag kills: {exc.what} is unreachable right now")
        return Board(
            read_at=now,
            incidents=incidents,
            requests=requests,
            deploys=deploys,
            locks=locks,
            freezes=sorted(windows + freezes, key=lambda f: f.ends_at),
            kills=kills,
            unavailable=unavailable,
        )

    def view_for(self, user: str, board: Board, *, notice: HomeNotice | None = None, refreshing: bool = True) -> HomeView:
        """``user``'s Home from ``board``: the requests they may vote on, their recent actions, their notice."""
        d = self._d
        unavailable = list(board.unavailable)
        groups: list[str] = []  # user groups Slack would not show: counted as not holding the role
        viewer = Viewer(
            user,
            approver=d.policy.has(user, Role.APPROVER, unreadable=groups),
            admin=d.policy.has(user, Role.ADMIN, unreadable=groups),
            in_environment={
                env: (
                    d.policy.has(user, Role.APPROVER, environment=env, unreadable=groups),
                    d.policy.has(user, Role.ADMIN, environment=env, unreadable=groups),
                )
                for env in d.policy.environments
            },
        )
        if groups:
            unavailable.append("Your approver role: " + "; ".join(groups))
        if not d.policy.has(user, Role.VIEWER, unreadable=groups):  # Home shows what `/ops` shows viewers, no more
            return HomeView(user, board.read_at, [], 0, [], 0, [], 0, [], 0, [], 0, [], 0, [], permitted=False)
        actions = []
        try:
            actions = model.action_rows(d.audit.query(AuditQuery(actor=user, limit=model.RECENT_ACTIONS)))
        except Unavailable as exc:
            unavailable.append(f"Your recent actions: {exc.what} is unreachable right now")
        if notice is None and refreshing:
            try:
                notice = d.viewers.notice(user)
            except Unavailable:
                notice = None
        now = board.read_at
        incidents, incidents_more = model.first([model.incident_row(i) for i in board.incidents])
        approvals, approvals_more = model.first([model.approval_row(viewer, r, v, now) for r, v in board.requests])
        deploys, deploys_more = model.first([model.deploy_row(x) for x in board.deploys])
        locks, locks_more = model.first(board.locks)
        freezes, freezes_more = model.first(board.freezes)
        kills, kills_more = model.first(board.kills)
        return HomeView(
            user=user,
            now=now,
            incidents=incidents,
            incidents_more=incidents_more,
            approvals=approvals,
            approvals_more=approvals_more,
            deploys=deploys,
            deploys_more=deploys_more,
            locks=locks,
            locks_more=locks_more,
            freezes=freezes,
            freezes_more=freezes_more,
            kills=kills,
            kills_more=kills_more,
            actions=actions,
            notice=notice,
            unavailable=unavailable,
            refreshing=refreshing,
        )

    # ----- helpers -----
    def _publish(self, user: str, board: Board, *, notice: HomeNotice | None = None, refreshing: bool = True) -> None:
        d = self._d
        d.surface.publish(user, self.view_for(user, board, notice=notice, refreshing=refreshing))
        # The window was opened before reading; it restarts once Slack has the view, so Slack never sees two
        # publishes for one person less than DEBOUNCE_SECONDS apart, however long reading and rendering took.
        with contextlib.suppress(Unavailable):
            d.viewers.hold(user, model.DEBOUNCE_SECONDS)

    def _trail(self, user: str) -> None:
        d = self._d
        at: datetime = d.clock.now() + timedelta(seconds=d.viewers.window_left(user) + 0.05)
        d.jobs.schedule(at, REFRESH_JOB, {"user": user}, key=f"home:refresh:{user}")

    def _release(self, user: str) -> None:
        with contextlib.suppress(Unavailable):
            self._d.viewers.release(user)


def notice_of(reply: Reply) -> HomeNotice:
    """The answer to a click on Home, as one line at the top of the clicker's Home."""
    message = reply.message
    if isinstance(message, VoteReceipt):
        request = message.request
        if message.decision is Decision.APPROVE:
            text = f"You approved {request.title}: {message.approvals} of {request.needed}."
            if request.state is ApprovalState.APPROVED:
                text += " That was the last approval needed."
            return HomeNotice("✅", " ".join([text, *message.waiting]))
        if request.state is ApprovalState.CANCELLED:
            return HomeNotice("🚫", f"You withdrew {request.title}.")
        return HomeNotice("❌", f"You rejected {request.title}.")
    if isinstance(message, ErrorNotice):
        reference = f" (ref {message.reference})" if message.reference else ""
        return HomeNotice(ICONS.get(message.kind, "⚠️"), message.message + reference)
    return HomeNotice("✅", "Done.")


class RequestObserver(Protocol):
    """The dispatcher's observer (``bot.domain.dispatch.RequestObserver``), named here so Home need not import it."""

    def finished(self, actor: Actor, action: str, outcome: str, seconds: float) -> None: ...


class ChangeWatcher:
    """The dispatcher's request observer with Home's refresh hook: ``inner`` is told first (metrics, the request log),
    then a request that may have changed what Home shows asks for a refresh. A refresh that cannot be asked for
    (Redis away) is logged; the request's answer does not change."""

    def __init__(self, inner: RequestObserver, home: HomeService) -> None:
        self._inner = inner
        self._home = home

    def finished(self, actor: Actor, action: str, outcome: str, seconds: float) -> None:
        try:
            self._inner.finished(actor, action, outcome, seconds)
        finally:
            if self._home.shows_change(action, outcome):
                try:
                    self._home.changed()
                except OpsError as exc:
                    log.warning("Home will not refresh after %s: %s", action, exc.message)
