"""`/ops history [service] [env]`: the latest deploys and rollbacks, with state, times and people."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.shared import catalog

from bot.domain.deploys import support as deploy_support
from bot.domain.shared.commands import Args, Subcommand, expect
from bot.domain.shared.context import Call
from bot.domain.deploys.messages import History
from bot.domain.shared.policy import Role
from bot.domain.shared.ports import Reply

USAGE = "history [service] [env]"


@dataclass(frozen=True)
class ShowHistory:
    service: str | None = None
    environment: str | None = None


def parse(args: Args) -> ShowHistory:
    words = expect(args, USAGE, required=0, optional=2)
    return ShowHistory(*words)


def run(command: ShowHistory, call: Call) -> Reply:
    service = environment = None
    if command.service is not None and command.environment is None and command.service.lower() in call.config.environments \
            and command.service.lower() not in call.config.services:
        environment = command.service.lower()  # `/ops history production`
    elif command.service is not None:
        service, _ = catalog.service(call.config, command.service)
        if command.environment is not None:
            environment = catalog.environment(call.config, service, command.environment)
    limit = call.config.deploys.history_size
    deploys = deploy_support.store(call).history(service, environment, limit)
    filters = " in ".join(part for part in (service, environment) if part) or "every service"
    return Reply(History(deploys, filters, call.services.clock.now()))


COMMANDS: list[Subcommand] = [
    Subcommand(("history",), "Latest deploys and rollbacks: state, times, requester, approvers", USAGE, Role.VIEWER, parse, run),
]
