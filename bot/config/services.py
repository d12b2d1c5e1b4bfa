"""`services`: environments with health checks and version endpoints, deploy providers; and `deploys`."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from bot.config.common import ENV_VAR, HEADER_NAME, VERSION_PATTERNS, Strict
from bot.config.metrics import MetricGuardrail, unique_names


class HealthCheck(Strict):
    """One endpoint to probe, and what counts as healthy (docs/health.md explains each key)."""

    url: str = Field(pattern=r"^https?://[^\s]+$")
    name: str | None = Field(default=None, max_length=80)
    method: Literal["GET", "HEAD", "POST"] = "GET"
    expect_status: list[int] = Field(default_factory=lambda: [200], min_length=1)
    expect_json: dict[str, str | int | float | bool] = Field(default_factory=dict)
    warn_ms: int = Field(default=500, ge=1)
    critical_ms: int = Field(default=2000, ge=1)
    timeout_ms: int = Field(default=2000, ge=1, le=120_000)
    headers: dict[str, str] = Field(default_factory=dict)
    headers_from_env: dict[str, str] = Field(default_factory=dict)

    @field_validator("expect_status")
    @classmethod
    def _statuses(cls, value: list[int]) -> list[int]:
        for code in value:
            if not 100 <= code <= 599:
                raise ValueError(f"{code} is not an HTTP status code (100-599)")
        return value

    @field_validator("headers", "headers_from_env")
    @classmethod
    def _header_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not an HTTP header name")
        return value

    @field_validator("headers_from_env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for variable in value.values():
            if not ENV_VAR.match(variable):
                raise ValueError(f"{variable!r} is not an environment variable name")
        return value

    @model_validator(mode="after")
    def _thresholds(self) -> HealthCheck:
        if self.critical_ms < self.warn_ms:
            raise ValueError(f"critical_ms ({self.critical_ms}) must not be below warn_ms ({self.warn_ms})")
        return self

    @property
    def label(self) -> str:
        """``name``, or the URL's path (``/health/db``) when no name is given."""
        if self.name:
            return self.name
        rest = self.url.split("://", 1)[1]
        path = rest[rest.find("/") :] if "/" in rest else "/"
        return path.split("?", 1)[0] or "/"


class ServiceEnvironment(Strict):
    health: list[HealthCheck] = Field(default_factory=list)
    version_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    version_json_key: str = "version"
    version_timeout_ms: int = Field(default=5000, ge=1, le=120_000)
    metrics: list[MetricGuardrail] = Field(default_factory=list)  # guardrails checked while a deploy is verified

    @field_validator("metrics")
    @classmethod
    def _metric_names(cls, value: list[MetricGuardrail]) -> list[MetricGuardrail]:
        return unique_names(value)


class CommandProvider(Strict):
    type: Literal["command"]
    argv: list[str] = Field(min_length=1)
    timeout_seconds: int = Field(default=600, ge=1)
    cwd: str | None = None


class WebhookProvider(Strict):
    type: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")
    secret_env: str
    timeout_seconds: float = Field(default=30, gt=0)
    retries: int = Field(default=3, ge=0, le=10)
    backoff_seconds: float = Field(default=1.0, ge=0, le=60)


class GithubActionsProvider(Strict):
    type: Literal["github_actions"]
    repo: str = Field(pattern=r"^[\w.-]+/[\w.-]+$")
    workflow: str
    ref: str = "main"
    token_env: str = "GITHUB_TOKEN"
    api_url: str = "https://api.github.com"
    inputs: dict[str, str] = Field(default_factory=dict)
    # The workflow input that carries the deploy's id; the workflow shows it in its `run-name:` so opsbot can tell
    # its run from others (GitHub's dispatch answers 204 without a run id). null: take the oldest run since.
    correlation_input: str | None = Field(default="opsbot_run_id", pattern=r"^[A-Za-z_][\w-]*$")
    timeout_seconds: int = Field(default=1800, ge=1)
    poll_seconds: float = Field(default=10, gt=0, le=300)

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        return github_api_url(value)


# The shortest `services.<name>.ci.poll_seconds`: GitHub allows a token 5,000 REST requests an hour ("Rate limits for
# the REST API") and each poll makes at least two, so a request polled every 5 s spends 1,440 of them an hour. Read at
# validation time, so tests that need fast polls lower it with monkeypatch.
MIN_POLL_SECONDS = 5.0
LOOPBACK_HOSTS = frozenset({"localhost"})


def _loopback(host: str) -> bool:
    """Whether ``host`` (a URL's host, without brackets) is this machine: ``localhost``, 127.0.0.0/8 or ``::1``."""
    if host.lower() in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def github_api_url(value: str) -> str:
    """A GitHub API base URL a token may be sent to: no credentials in the URL (they would be shown wherever the URL
    is), and HTTPS unless GitHub is this machine: the token travels in every request's Authorization header.
    Raises ValueError saying which rule it breaks."""
    try:
        parts = urlsplit(value)
        host, _ = parts.hostname or "", parts.port  # .port raises for a port that is not a number in 0-65535
    except ValueError as exc:
        raise ValueError(f"not a URL ({exc})") from None
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry a user name or password (put the token in the environment variable named by token_env)")
    if not host:
        raise ValueError("names no host")
    if parts.scheme == "http" and not _loopback(host):
        raise ValueError(
            f"must use https:// ({host} is not this machine, and the token would travel unencrypted); "
            "http:// is accepted only for loopback hosts (127.0.0.0/8, ::1, localhost)"
        )
    return value


class CiGate(Strict):
    """``services.<name>.ci``: the version's commit status and check runs on GitHub must be green before it deploys
    (docs/deploys.md, "The CI gate")."""

    provider: Literal["github"] = "github"
    repo: str = Field(pattern=r"^[\w.-]+/[\w.-]+$")
    token_env: str = Field(default="GITHUB_TOKEN", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    api_url: str = Field(default="https://api.github.com", pattern=r"^https?://[^\s]+$")
    ci_timeout_minutes: float = Field(default=30, gt=0, le=24 * 60)  # a request still waiting for CI then is refused
    poll_seconds: float = Field(default=15, gt=0, le=600)  # how often a waiting request reads CI again
    environments: list[str] | None = None  # where the gate applies; None: every environment of the service
    required_checks: list[str] = Field(default_factory=list)  # check runs or status contexts that must be reported
    request_timeout_seconds: float = Field(default=10, gt=0, le=60)  # one HTTP call to GitHub

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        return github_api_url(value)

    @field_validator("poll_seconds")
    @classmethod
    def _poll_floor(cls, value: float) -> float:
        if value < MIN_POLL_SECONDS:
            raise ValueError(
                f"must be at least {MIN_POLL_SECONDS:g} s: each poll makes at least two GitHub requests, and GitHub "
                "allows a token 5,000 requests an hour"
            )
        return value

    @field_validator("required_checks")
    @classmethod
    def _check_names(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for name in value:
            if not name.strip():
                raise ValueError("a check name must not be empty (CI would wait for it until ci_timeout_minutes)")
            if name in seen:
                raise ValueError(f"{name!r} is listed twice")
            seen.add(name)
        return value


DeployProvider = Annotated[CommandProvider | WebhookProvider | GithubActionsProvider, Field(discriminator="type")]


class Service(Strict):
    environments: dict[str, ServiceEnvironment]
    deploy: DeployProvider | None = None
    ci: CiGate | None = None  # the CI gate: GitHub's checks of the version must be green
    version_pattern: str = "semver"
    change_url: str | None = None

    @field_validator("environments", mode="before")
    @classmethod
    def _list_shorthand(cls, value: Any) -> Any:
        if isinstance(value, list):
            return {name: {} for name in value}
        return {name: ({} if body is None else body) for name, body in value.items()} if isinstance(value, dict) else value

    @field_validator("version_pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            re.compile(VERSION_PATTERNS.get(value, value))
        except re.error as exc:
            raise ValueError(f"not a known pattern name ({', '.join(VERSION_PATTERNS)}) nor a valid regex: {exc}") from None
        return value

    def version_regex(self) -> re.Pattern[str]:
        return re.compile(VERSION_PATTERNS.get(self.version_pattern, self.version_pattern))


class Deploys(Strict):
    """How deploys run once approved: the verification watch window and the deploy lock's TTL."""

    watch_seconds: float = Field(default=300, ge=0, le=6 * 3600)
    check_every_seconds: float = Field(default=30, gt=0, le=3600)
    lock_ttl_seconds: float = Field(default=600, ge=3, le=24 * 3600)
    history_size: int = Field(default=10, ge=1, le=25)
