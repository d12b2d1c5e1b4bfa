"""`status_page`: the public status page `opsbot serve` shows at /status and /status.json (off by default)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from bot.config.common import Strict

if TYPE_CHECKING:
    from bot.config import OpsConfig


class StatusPage(Strict):
    """What the public page shows: its title, which services (default: every configured one), which
    environments' health watches decide a service's state (default: every watched one), and for how long a
    resolved incident with public updates stays listed (hours; 0: not at all)."""

    enabled: bool = False
    title: str = Field(default="Service status", min_length=1, max_length=100)
    services: list[str] | None = None
    environments: list[str] | None = None
    show_resolved_hours: int = Field(default=24, ge=0, le=14 * 24)  # resolved incidents stay listed this long


def status_page_problems(config: OpsConfig) -> list[str]:
    """Services or environments the status page names that the config does not have."""
    page = config.status_page
    problems = [
        f"status_page.services: unknown service {name!r} (known: {', '.join(config.services) or 'none'})"
        for name in page.services or []
        if name not in config.services
    ]
    problems.extend(
        f"status_page.environments: unknown environment {name!r} (known: {', '.join(config.environments) or 'none'})"
        for name in page.environments or []
        if name not in config.environments
    )
    return problems
