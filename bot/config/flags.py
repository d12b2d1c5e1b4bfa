"""`flags`: where feature flags live (the SQL table or Unleash) and their guardrails."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from bot.config.common import ENV_VAR, Strict

SQL_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"


class FlagColumns(Strict):
    """Column names of the application's flag table (the runbook's names by default)."""

    name: str = Field(default="name", pattern=SQL_IDENTIFIER)
    enabled: str = Field(default="enabled", pattern=SQL_IDENTIFIER)
    kill_switch: str = Field(default="kill_switch", pattern=SQL_IDENTIFIER)
    rollout_percentage: str = Field(default="rollout_percentage", pattern=SQL_IDENTIFIER)


class FlagDatabase(Strict):
    """Where one environment's flag table lives: a URL read from an env var, or a URL without secrets."""

    url_env: str | None = Field(default=None, pattern=ENV_VAR.pattern)
    url: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> FlagDatabase:
        if (self.url_env is None) == (self.url is None):
            raise ValueError("give exactly one of url_env (the name of an environment variable holding the URL) or url")
        if self.url is not None and urlsplit(self.url).password:
            raise ValueError("url contains a password: put the URL in an environment variable and name it with url_env")
        return self


class SqlFlagProvider(Strict):
    type: Literal["sql"]
    databases: dict[str, FlagDatabase] = Field(min_length=1)
    table: str = Field(default="feature_flags", pattern=SQL_IDENTIFIER)
    table_schema: str | None = Field(default=None, pattern=SQL_IDENTIFIER)
    columns: FlagColumns = Field(default_factory=FlagColumns)
    timeout_seconds: float = Field(default=3, gt=0, le=60)
    seed_demo_flags: bool = False


class UnleashFlagProvider(Strict):
    type: Literal["unleash"]
    url: str = Field(pattern=r"^https?://")
    token_env: str | None = Field(default=None, pattern=ENV_VAR.pattern)
    project: str = Field(default="default", pattern=r"^[A-Za-z0-9_.~-]{1,100}$")
    environments: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=5, gt=0, le=60)


FlagProviderConfig = Annotated[SqlFlagProvider | UnleashFlagProvider, Field(discriminator="type")]


class Flags(Strict):
    provider: FlagProviderConfig | None = None
    environments: list[str] = Field(default_factory=list)
    default_environment: str | None = None
    rollout_max_step: int = Field(default=25, ge=1, le=100)
    rollout_ceiling: dict[str, Annotated[int, Field(ge=0, le=100)]] = Field(default_factory=dict)
    services: dict[str, str] = Field(default_factory=dict)

    def problems(self, environments: dict[str, Any], services: dict[str, Any]) -> list[str]:
        """References to unknown environments and services, one line each."""
        known = ", ".join(environments) or "none"
        named = [("flags.environments", env) for env in self.environments]
        named += [("flags.rollout_ceiling", env) for env in self.rollout_ceiling]
        named += [("flags.default_environment", self.default_environment)] if self.default_environment else []
        if isinstance(self.provider, SqlFlagProvider):
            named += [("flags.provider.databases", env) for env in self.provider.databases]
        if isinstance(self.provider, UnleashFlagProvider):
            named += [("flags.provider.environments", env) for env in self.provider.environments]
        found = [f"{path}: unknown environment {env!r} (known: {known})" for path, env in named if env not in environments]
        found += [
            f"flags.services.{pattern}: unknown service {svc!r}" for pattern, svc in self.services.items() if svc not in services
        ]
        return found
