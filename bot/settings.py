"""Process settings, read from the environment (never from the ops config)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_DATABASE_URL = "sqlite:///opsbot.db"


class MissingSetting(Exception):
    """A setting a command needs is not set (or, with ``problem``, is set but unusable); the CLI prints one line, exits 2."""

    def __init__(self, variable: str, why: str, *, problem: str = "is not set") -> None:
        super().__init__(f"{variable}{'' if problem.startswith('=') else ' '}{problem}: {why}")
        self.variable = variable


class Settings(BaseSettings):
    """Environment settings. Secrets are SecretStr so they never print by accident."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    opsbot_config: Path = Path("opsbot.yml")
    opsbot_templates: Path | None = None
    opsbot_redis_prefix: str = Field(default="opsbot:", description="prefix of every Redis key")
    opsbot_queue: str = Field(default="opsbot", description="the RQ queue background jobs go through")
    port: int = 3000
    web_concurrency: int = 2
    opsbot_listener_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="how far below the process the threads that run commands are scheduled (Linux nice steps; 0: not)",
    )
    opsbot_gil_switch_ms: float = Field(
        default=0.5,
        ge=0.05,
        le=100,
        allow_inf_nan=False,
        description="how often a serve worker's threads trade the GIL (ms); an ack waits up to this each time it needs it",
    )
    opsbot_work_processes: int = Field(
        default=1,
        ge=0,
        le=32,
        description="processes each `opsbot serve` worker hands commands' work to, so acks never wait behind it "
        "(0: the work runs in the worker, on threads)",
    )
    log_level: str = "INFO"
    log_format: Literal["json", "console"] | None = Field(
        default=None, description="json (one object a line) or console; unset: json unless stderr is a terminal"
    )
    opsbot_alertmanager_token: SecretStr | None = Field(
        default=None, description="the bearer token Alertmanager sends to POST /alertmanager; unset: alerts are refused (503)"
    )
    opsbot_metrics_port: int | None = Field(default=None, description="`opsbot worker` serves /metrics on it; off when unset")

    @field_validator("log_format", mode="before")
    @classmethod
    def _lowercase_format(cls, value: object) -> object:
        return value.strip().lower() or None if isinstance(value, str) else value

    def secret_values(self) -> list[str]:
        """The secrets' values, for the log filter that masks them."""
        return [s.get_secret_value() for s in (self.slack_bot_token, self.slack_signing_secret, self.slack_app_token) if s]

    def require(self, variable: str, why: str) -> str:
        """The secret value of ``variable`` or MissingSetting naming it."""
        value = getattr(self, variable.lower())
        if value is None or not value.get_secret_value().strip():
            raise MissingSetting(variable.upper(), why)
        return str(value.get_secret_value())
