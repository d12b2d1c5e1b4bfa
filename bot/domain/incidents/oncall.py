"""`/ops oncall [service]`: who PagerDuty has on call now, for a service's escalation policy or for all of them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from bot.domain.incidents.deps import IncidentDeps
from bot.domain.incidents.ports import OnCallShift
from bot.domain.shared import catalog
from bot.domain.shared.commands import Args, expect
from bot.domain.shared.errors import Refused
from bot.domain.shared.policy import Actor
from bot.domain.shared.ports import Reply

USAGE = "oncall [service]"


@dataclass(frozen=True)
class ShowOnCall:
    service: str | None = None


@dataclass(frozen=True)
class OnCallNow:
    """Who is on call now (``service`` None: every escalation policy opsbot's token sees)."""

    template: ClassVar[str] = "incident/oncall"
    service: str | None
    shifts: list[OnCallShift]
    now: datetime


def parse(args: Args) -> ShowOnCall:
    (service,) = expect(args, USAGE, required=0, optional=1) or (None,)
    return ShowOnCall(service)


class OnCallQueries:
    def __init__(self, deps: IncidentDeps) -> None:
        self._d = deps

    def show(self, command: ShowOnCall, actor: Actor) -> Reply:
        d = self._d
        if d.config.pagerduty is None or d.oncall is None:
            raise Refused('PagerDuty is not configured: add `pagerduty` to the ops config (docs/incidents.md, "Paging").')
        policies: list[str] = []
        service = None
        if command.service:
            service, _ = catalog.service(d.config, command.service)
            policy = d.config.pagerduty.escalation_policies.get(service)
            if policy is None:
                raise Refused(
                    f"No PagerDuty escalation policy is set for `{service}`: add `pagerduty.escalation_policies.{service}`."
                )
            policies = [policy]
        return Reply(OnCallNow(service, d.oncall.now(policies), d.clock.now()))
