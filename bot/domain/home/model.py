"""The Home tab as the domain sees it: what everyone sees (``Board``), what one person sees (``home_for``). Pure.

The board is read once and shared by every viewer it is published for; what differs per person is which
requests they may vote on (the approvals family's own ``judge_vote``, asked about a vote not cast), their own
recent actions, and a notice answering their last click. Each list shows at most ``ROWS`` items and says how
many more there are, so the view stays within Slack's 100 blocks (``bot.slack_limits.BLOCKS_PER_MODAL_OR_HOME``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TypeVar

from bot.domain.approvals.model import ApprovalRequest, Decision, Vote, approvals_of, judge_vote
from bot.domain.deploys.model import Deploy, DeployState
from bot.domain.incidents.model import Incident
from bot.domain.locks.ports import LockInfo
from bot.domain.shared.errors import OpsError
from bot.domain.shared.ports import AuditRecord

ROWS = 8  # items per list; 6 lists of 8 (approvals take 2 blocks each) + headers stay under 100 blocks
RECENT_ACTIONS = 5
KILLS_WITHIN = timedelta(hours=24)
DEBOUNCE_SECONDS = 10.0  # at most one automatic views.publish per person per 10 s (issue 13 §1)
VIEWERS_FOR = timedelta(minutes=30)  # who opened Home within this is refreshed when something it shows changes
NOTICE_SECONDS = 120  # a click's answer stays at the top of the clicker's Home this long
BOARD_MAX_AGE = timedelta(seconds=5)  # a board is read again after this even when no change was reported

T = TypeVar("T")


def first(items: list[T], limit: int = ROWS) -> tuple[list[T], int]:
    """The first ``limit`` items and how many are left out ("and N more")."""
    return items[:limit], max(len(items) - limit, 0)


@dataclass(frozen=True)
class IncidentRow:
    ref: str
    severity: str
    headline: str
    status: str
    channel_id: str
    commander: str
    declared_at: datetime
    next_update_at: datetime | None


@dataclass(frozen=True)
class ApprovalRow:
    """A pending approval request, and what this viewer may do about it (the server checks again on the click)."""

    request_id: str
    title: str
    requester: str
    reason: str
    approvals: int
    needed: int
    expires_at: datetime
    may_vote: bool  # Approve and Reject
    may_withdraw: bool  # the requester's own Reject
    voted: str  # "approved" / "rejected" when this viewer already voted, else ""
    checklist: int = 0  # items an approver ticks on the request's message before approving (no bare Approve on Home)
    checklist_by_opsbot: int = 0  # of those, items a gate ticks (CI green, staging verified): nobody ticks them by hand
    channel: str | None = None  # where the request's message is
    message_link: str | None = None  # a link to it, once posted


@dataclass(frozen=True)
class DeployRow:
    deploy_id: str
    kind: str
    service: str
    environment: str
    version: str
    requester: str
    state: str
    since: datetime


@dataclass(frozen=True)
class FreezeRow:
    target: str
    ends_at: datetime
    reason: str
    by: str | None  # None: a configured freeze window


@dataclass(frozen=True)
class KillRow:
    flag: str
    environment: str
    by: str
    at: datetime
    reason: str
    unkilled_at: datetime | None = None


@dataclass(frozen=True)
class ActionRow:
    action: str
    outcome: str
    target: str
    at: datetime


@dataclass(frozen=True)
class HomeNotice:
    """The answer to this person's last click on Home (a view has no response URL to carry it)."""

    icon: str
    text: str


@dataclass(frozen=True)
class Board:
    """What every viewer sees, read once; ``unavailable`` names what could not be read, and why."""

    read_at: datetime
    incidents: list[Incident] = field(default_factory=list)
    requests: list[tuple[ApprovalRequest, list[Vote]]] = field(default_factory=list)
    deploys: list[Deploy] = field(default_factory=list)
    locks: list[LockInfo] = field(default_factory=list)
    freezes: list[FreezeRow] = field(default_factory=list)
    kills: list[KillRow] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Viewer:
    """Who looks: their id, whether they hold the approver and admin roles (read when their Home is built), and the
    same in each environment that sets roles of its own (``environments.<env>.roles``): (approver, admin)."""

    user: str
    approver: bool
    admin: bool
    in_environment: dict[str, tuple[bool, bool]] = field(default_factory=dict)

    def roles_in(self, environment: str | None) -> tuple[bool, bool]:
        """(approver, admin) where a request of ``environment`` is decided."""
        return self.in_environment.get(environment or "", (self.approver, self.admin))


def incident_row(incident: Incident) -> IncidentRow:
    return IncidentRow(
        ref=incident.ref,
        severity=incident.severity,
        headline=incident.headline,
        status=incident.status.value,
        channel_id=incident.channel_id,
        commander=incident.commander,
        declared_at=incident.declared_at,
        next_update_at=incident.next_update_at,
    )


def may_approve(viewer: Viewer, request: ApprovalRequest, votes: list[Vote], now: datetime) -> bool:
    """Whether an Approve by ``viewer`` would count now: the approver role, then the approvals family's own rule
    (``judge_vote``: not decided, not expired, not voted yet, not their own request unless an admin's hotfix)."""
    approver, admin = viewer.roles_in(request.environment)
    if not approver:
        return False
    ballot = Vote(viewer.user, Decision.APPROVE, now, as_admin=admin, self_approval=viewer.user == request.requester)
    try:
        # The checklist is ticked on the request's message, not here: Home links there instead of offering Approve.
        judge_vote(replace(request, checklist=()), votes, ballot, now)
    except OpsError:
        return False
    return now < request.expires_at


def approval_row(viewer: Viewer, request: ApprovalRequest, votes: list[Vote], now: datetime) -> ApprovalRow:
    earlier = next((v for v in votes if v.voter == viewer.user), None)
    voted = "" if earlier is None else ("approved" if earlier.decision is Decision.APPROVE else "rejected")
    return ApprovalRow(
        request_id=request.id,
        title=request.title,
        requester=request.requester,
        reason=request.reason,
        approvals=approvals_of(votes),
        needed=request.needed,
        expires_at=request.expires_at,
        may_vote=may_approve(viewer, request, votes, now),
        may_withdraw=viewer.user == request.requester and now < request.expires_at,
        voted=voted,
        checklist=len(request.checklist),
        checklist_by_opsbot=sum(1 for item in request.checklist if item.satisfied_by is not None),
        channel=request.channel,
        message_link=message_link(request.channel, request.message_ts),
    )


def message_link(channel: str | None, ts: str | None) -> str | None:
    """A link to a message: Slack's archive URL (``/archives/<channel>/p<ts without its dot>``), which Slack's clients
    open at the message (the form chat.getPermalink answers, on slack.com rather than the workspace's own domain)."""
    if not channel or not ts:
        return None
    return f"https://slack.com/archives/{channel}/p{ts.replace('.', '')}"


def deploy_row(deploy: Deploy) -> DeployRow:
    since = deploy.started_at or deploy.approved_at or deploy.requested_at
    return DeployRow(
        deploy_id=deploy.id,
        kind=deploy.kind.value,
        service=deploy.service,
        environment=deploy.environment,
        version=deploy.version,
        requester=deploy.requester,
        state=deploy.state.value,
        since=since,
    )


IN_PROGRESS = frozenset({DeployState.APPROVED, DeployState.RUNNING})  # requested ones are in the approvals list


def kills_from(kills: list[AuditRecord], unkills: list[AuditRecord]) -> list[KillRow]:
    """Flag kills from the audit log (``flag.kill`` rows that succeeded), newest first, each with the unkill that
    followed it in the same environment, if any."""
    rows = []
    for record in kills:
        entry = record.entry
        if entry.action != "flag.kill" or entry.outcome != "ok":
            continue
        flag = str(entry.params.get("flag") or entry.target.split("/")[0])
        env = entry.environment or ""
        later = [
            r.at
            for r in unkills
            if r.entry.action == "flag.unkill"
            and r.entry.outcome == "ok"
            and r.at > record.at
            and str(r.entry.params.get("flag") or r.entry.target.split("/")[0]) == flag
            and (r.entry.environment or "") == env
        ]
        rows.append(
            KillRow(
                flag=flag,
                environment=env,
                by=str(entry.params.get("by") or entry.actor),
                at=record.at,
                reason=str(entry.params.get("reason") or ""),
                unkilled_at=min(later) if later else None,
            )
        )
    return sorted(rows, key=lambda r: r.at, reverse=True)


def action_rows(records: list[AuditRecord]) -> list[ActionRow]:
    return [ActionRow(r.entry.action, r.entry.outcome, r.entry.target, r.at) for r in records[:RECENT_ACTIONS]]
