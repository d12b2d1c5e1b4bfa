"""Which adapter runs a service's `deploy:` config: command, webhook or github_actions."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from bot.adapters.deploy_providers.command import CommandDeploy, end_process_group
from bot.adapters.deploy_providers.github_actions import GithubActionsDeploy
from bot.adapters.deploy_providers.webhook import WebhookDeploy
from bot.config import CommandProvider, GithubActionsProvider, WebhookProvider
from bot.domain.deploys.ports import DeployProvider


class ConfiguredProviders:
    """Builds the provider for a spec; secrets are read from ``environ`` when a deploy runs."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def for_spec(self, spec: Any) -> DeployProvider:
        if isinstance(spec, CommandProvider):
            return CommandDeploy(spec, self._environ)
        if isinstance(spec, WebhookProvider):
            return WebhookDeploy(spec, self._environ)
        if isinstance(spec, GithubActionsProvider):
            return GithubActionsDeploy(spec, self._environ)
        raise TypeError(f"no deploy provider for {type(spec).__name__}")

    def end_process(self, description: str) -> bool:
        return end_process_group(description)
