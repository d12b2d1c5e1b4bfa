"""`/ops history [service] [env]`: the latest deploys and rollbacks, with state, times and people."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.deploys.deps import DeployDeps
from bot.domain.deploys.messages import History
from bot.domain.shared import catalog
from bot.domain.shared.commands import Args, expect
from bot.domain.shared.policy import Actor
from bot.domain.shared.ports import Reply

USAGE = "history [service] [env]"


@dataclass(frozen=True)
class ShowHistory:
    service: str | None = None
    environment: str | None = None


def parse(args: Args) -> ShowHistory:
    words = expect(args, USAGE, required=0, optional=2)
    return ShowHistory(*words)


class DeployHistory:
    def __init__(self, deps: DeployDeps) -> None:
        self._d = deps

    def show(self, command: ShowHistory, actor: Actor) -> Reply:
        config = self._d.config
        service = environment = None
        if (
            command.service is not None
            and command.environment is None
            and command.service.lower() in config.environments
            and command.service.lower() not in config.services
        ):
            environment = command.service.lower()  # `/ops history production`
        elif command.service is not None:
            service, _ = catalog.service(config, command.service)
            if command.environment is not None:
                environment = catalog.environment(config, service, command.environment)
        with self._d.uow() as uow:
            deploys = uow.deploys.history(service, environment, config.deploys.history_size)
        filters = " in ".join(part for part in (service, environment) if part) or "every service"
        return Reply(History(deploys, filters, self._d.clock.now()))
