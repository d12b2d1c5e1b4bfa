"""Looking up services and environments by name, with close-name suggestions."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from bot.config import OpsConfig, Service
from bot.domain.shared.errors import NotFound, UsageError


def suggest(name: str, known: Iterable[str]) -> list[str]:
    """Up to three known names close to ``name``."""
    return difflib.get_close_matches(name.lower(), list(known), n=3, cutoff=0.5)


def service(config: OpsConfig, name: str | None) -> tuple[str, Service]:
    """The named service, or the default service when ``name`` is None."""
    if name is None:
        if config.default_service is None:
            raise UsageError("Name a service: no default service is configured.")
        name = config.default_service
    found = config.services.get(name.lower())
    if found is None:
        raise NotFound("service", name, suggest(name, config.services), known=list(config.services))
    return name.lower(), found


def environment(config: OpsConfig, service_name: str, name: str) -> str:
    """``name`` if ``service_name`` may run there."""
    svc = config.services[service_name]
    env = name.lower()
    if env not in svc.environments:
        if env in config.environments:
            raise UsageError(
                f"`{service_name}` does not run in `{name}`; it runs in {', '.join(f'`{e}`' for e in svc.environments)}."
            )
        raise NotFound("environment", name, suggest(name, svc.environments), known=list(svc.environments))
    return env


def lock_name(service_name: str, env: str) -> str:
    """The deploy lock of a service in an environment."""
    return f"deploy/{service_name}/{env}"
