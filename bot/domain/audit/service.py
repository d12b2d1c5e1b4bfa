"""`/ops audit`: recent audit entries, filtered and paged, from Slack or the console."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from bot.config import OpsConfig
from bot.config.durations import parse_duration
from bot.domain.shared import catalog
from bot.domain.shared.commands import Args, Subcommand, expect, person
from bot.domain.shared.errors import Conflict, UsageError
from bot.domain.shared.family import Family
from bot.domain.shared.policy import Actor, Policy, Role
from bot.domain.shared.ports import AuditLog, AuditQuery, AuditRecord, Clock, EphemeralState, Reply

PAGE_SIZE = 15
PAGE_TTL_SECONDS = 30 * 60
USAGE = "audit [service] [since=2h] [by=@user] [action=deploy]"


@dataclass(frozen=True)
class AuditDeps:
    """What the audit family needs, built once by the wiring."""

    config: OpsConfig
    clock: Clock
    audit: AuditLog
    state: EphemeralState
    policy: Policy


@dataclass(frozen=True)
class ShowAudit:
    service: str | None = None
    since_seconds: int | None = None
    actor: str | None = None
    action: str | None = None


@dataclass(frozen=True)
class AuditPage:
    template: ClassVar[str] = "audit/page"
    records: list[AuditRecord]
    filters: str
    more_id: str | None
    now: datetime


def parse(args: Args) -> ShowAudit:
    (service,) = expect(args, USAGE, required=0, optional=1) or (None,)
    since = None
    if "since" in args.options:
        try:
            since = int(parse_duration(args.options["since"], maximum=timedelta(days=366), argument="since=").total_seconds())
        except ValueError as exc:
            raise UsageError(str(exc) + ".", f"/ops {USAGE}") from None
    actor = None
    if "by" in args.options:
        actor = person(args.options["by"], args.people, argument="by=", usage=f"/ops {USAGE}")
    action = args.options.get("action") or None
    return ShowAudit(service, since, actor, action)


NAMESPACES = ("command", "click", "job")  # `action=click` lists every click (click.approve, click.alert_silence …)


def _action_prefix(action: str | None) -> str | None:
    """The audit action prefix ``action=`` asks for: a namespace alone is every action in it, a dotted name is itself,
    any other word is that command (``deploy`` → ``command.deploy``)."""
    if action is None:
        return None
    if action in NAMESPACES:
        return f"{action}."
    return action if "." in action else f"command.{action}"


class AuditCommands:
    """`/ops audit` and its "Older" button."""

    def __init__(self, deps: AuditDeps) -> None:
        self._d = deps

    def family(self) -> Family:
        return Family(
            "audit",
            commands=[
                Subcommand(
                    ("audit",),
                    "Recent audit entries: who did what, and how it ended",
                    USAGE,
                    Role.VIEWER,
                    parse,
                    self.show,
                    keys=frozenset({"since", "by", "action"}),
                ),
            ],
        )

    def show(self, command: ShowAudit, actor: Actor) -> Reply:
        d = self._d
        service = catalog.service(d.config, command.service)[0] if command.service else None
        since = d.clock.now() - timedelta(seconds=command.since_seconds) if command.since_seconds else None
        query = AuditQuery(
            service=service, actor=command.actor, since=since, action_prefix=_action_prefix(command.action), limit=PAGE_SIZE
        )
        return Reply(self._page(query))

    def next_page(self, actor: Actor, page_id: str) -> Reply:
        """The page after the one whose button carried ``page_id`` (an opaque id; the query lives server-side)."""
        d = self._d
        d.policy.require(actor, Role.VIEWER, "audit")
        saved = d.state.get("audit-page", page_id)
        if saved is None:
            raise Conflict("That page has expired; run `/ops audit` again.")
        since = datetime.fromisoformat(saved["since"]) if saved.get("since") else None
        query = AuditQuery(
            service=saved.get("service"),
            actor=saved.get("actor"),
            since=since,
            action_prefix=saved.get("action_prefix"),
            before_seq=saved["before_seq"],
            limit=PAGE_SIZE,
        )
        return Reply(self._page(query), replace_original=True)

    def _page(self, query: AuditQuery) -> AuditPage:
        d = self._d
        records = d.audit.query(AuditQuery(**{**query.__dict__, "limit": query.limit + 1}))
        more_id = None
        if len(records) > query.limit:
            records = records[: query.limit]
            saved = {
                "service": query.service,
                "actor": query.actor,
                "action_prefix": query.action_prefix,
                "since": query.since.isoformat() if query.since else None,
                "before_seq": records[-1].seq,
            }
            more_id = d.state.put("audit-page", saved, PAGE_TTL_SECONDS)
        filters = ", ".join(
            part
            for part in (
                f"service {query.service}" if query.service else "",
                f"since {query.since:%Y-%m-%d %H:%M} UTC" if query.since else "",
                f"by <@{query.actor}>" if query.actor else "",  # kept as a mention by the renderer
                f"action {query.action_prefix}" if query.action_prefix else "",
            )
            if part
        )
        return AuditPage(records, filters or "all entries", more_id, d.clock.now())
