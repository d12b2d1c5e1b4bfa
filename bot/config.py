"""The ops config: a YAML file, validated by pydantic, reported error by error with its path."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer, field_validator, model_validator

from bot.domain.durations import parse_duration
from bot.domain.freeze import FreezeWindow

PRINCIPAL = re.compile(r"^(\*|[UW][A-Z0-9]{2,}|S[A-Z0-9]{2,})$")
CHANNEL = re.compile(r"^[CGD][A-Z0-9]{2,}$")
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
VERSION_PATTERNS = {
    "semver": r"^v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$",
    "git_sha": r"^[0-9a-f]{7,40}$",
    "any": r"^[A-Za-z0-9][A-Za-z0-9._/+-]{0,127}$",
}


class Strict(BaseModel):
    """Unknown keys are errors: a typo in a runbook config must not pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _principals(values: list[str]) -> list[str]:
    for value in values:
        if not PRINCIPAL.match(value):
            raise ValueError(f"{value!r} is not a Slack user ID (U…/W…), user-group ID (S…) or \"*\"")
    return values


def _people(values: list[str]) -> list[str]:
    """Principals who are paged or invited: "*" (everyone) is never meant there."""
    if "*" in values:
        raise ValueError('"*" would invite or page everyone; name users (U…) or user groups (S…)')
    return _principals(values)


Principals = Annotated[list[str], Field(default_factory=list)]


class Channels(Strict):
    deployments: str
    incidents: str
    alerts: str

    @field_validator("deployments", "incidents", "alerts")
    @classmethod
    def _channel_id(cls, value: str) -> str:
        if not CHANNEL.match(value):
            raise ValueError(f"{value!r} is not a Slack channel ID (C…, G… or D…)")
        return value


class Roles(Strict):
    admin: Principals
    approver: Principals
    deployer: Principals
    viewer: list[str] = Field(default_factory=lambda: ["*"])

    @field_validator("admin", "approver", "deployer", "viewer")
    @classmethod
    def _check(cls, value: list[str]) -> list[str]:
        return _principals(value)


class Environment(Strict):
    approvals: int = Field(default=0, ge=0, le=10)
    rollback_approvals: int | None = Field(default=None, ge=0, le=10)
    approval_timeout_minutes: int = Field(default=30, ge=1, le=24 * 60)
    freeze_windows: list[FreezeWindow] = Field(default_factory=list)
    lock_after_rollback: bool = False

    @field_validator("freeze_windows", mode="before")
    @classmethod
    def _parse_windows(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [FreezeWindow.parse(item) if isinstance(item, str) else item for item in value]
        return value

    @field_serializer("freeze_windows")
    def _window_texts(self, windows: list[FreezeWindow]) -> list[str]:
        return [window.text for window in windows]


HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}$")
ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


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
        path = rest[rest.find("/"):] if "/" in rest else "/"
        return path.split("?", 1)[0] or "/"


class ServiceEnvironment(Strict):
    health: list[HealthCheck] = Field(default_factory=list)
    version_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    version_json_key: str = "version"
    version_timeout_ms: int = Field(default=5000, ge=1, le=120_000)


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
    timeout_seconds: int = Field(default=1800, ge=1)
    poll_seconds: float = Field(default=10, gt=0, le=300)


DeployProvider = Annotated[CommandProvider | WebhookProvider | GithubActionsProvider, Field(discriminator="type")]


class Service(Strict):
    environments: dict[str, ServiceEnvironment]
    deploy: DeployProvider | None = None
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
            raise ValueError(f"not a known pattern name ({', '.join(VERSION_PATTERNS)}) nor a valid regex: {exc}")
        return value

    def version_regex(self) -> re.Pattern[str]:
        return re.compile(VERSION_PATTERNS.get(self.version_pattern, self.version_pattern))


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
    def _one_source(self) -> "FlagDatabase":
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


class Deploys(Strict):
    """How deploys run once approved: the verification watch window and the deploy lock's TTL."""

    watch_seconds: float = Field(default=300, ge=0, le=6 * 3600)
    check_every_seconds: float = Field(default=30, gt=0, le=3600)
    lock_ttl_seconds: float = Field(default=600, ge=3, le=24 * 3600)
    history_size: int = Field(default=10, ge=1, le=25)


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
        found += [f"flags.services.{pattern}: unknown service {svc!r}" for pattern, svc in self.services.items() if svc not in services]
        return found


class EscalationStep(Strict):
    """Who is paged, how long after the declaration, while nobody has acknowledged the incident."""

    after_minutes: int = Field(ge=0, le=7 * 24 * 60)
    notify: Principals
    label: str = Field(default="", max_length=60)

    @field_validator("notify")
    @classmethod
    def _check(cls, value: list[str]) -> list[str]:
        return _people(value)


class Severity(Strict):
    update_every_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)
    responders: Principals
    # None: follow incidents.escalation; an empty list turns escalation off for this severity.
    escalation: list[EscalationStep] | None = None

    @field_validator("responders")
    @classmethod
    def _check(cls, value: list[str]) -> list[str]:
        return _people(value)


def _default_severities() -> dict[str, Severity]:
    return {
        "P0": Severity(update_every_minutes=30),
        "P1": Severity(update_every_minutes=60),
        "P2": Severity(update_every_minutes=240, escalation=[]),
        "P3": Severity(update_every_minutes=None, escalation=[]),
    }


def _runbook_escalation() -> list[EscalationStep]:
    # The runbook's path; nobody is named by default, so nothing is paged until an operator says who.
    return [
        EscalationStep(after_minutes=0, notify=[], label="on-call"),
        EscalationStep(after_minutes=15, notify=[], label="team lead"),
        EscalationStep(after_minutes=30, notify=[], label="engineering manager"),
        EscalationStep(after_minutes=60, notify=[], label="CTO"),
    ]


class Incidents(Strict):
    severities: dict[str, Severity] = Field(default_factory=_default_severities, min_length=1)
    escalation: list[EscalationStep] = Field(default_factory=_runbook_escalation)
    timeline_reaction: str = Field(default="pushpin", pattern=r"^[a-z0-9_+'-]{1,100}$")
    channel_prefix: str = Field(default="inc", pattern=r"^[a-z0-9_-]{1,20}$")
    snooze_minutes: int = Field(default=15, ge=1, le=24 * 60)
    freeze_hours: int = Field(default=72, ge=1, le=30 * 24)

    @field_validator("severities")
    @classmethod
    def _severity_names(cls, value: dict[str, Severity]) -> dict[str, Severity]:
        for name in value:
            if not re.match(r"^[A-Za-z0-9]{1,10}$", name):
                raise ValueError(f"{name!r} is not a severity name (letters and digits, like P1)")
        if len({name.lower() for name in value}) != len(value):
            raise ValueError("severity names must differ by more than case")
        return value

    def severity(self, name: str) -> tuple[str, Severity] | None:
        """The configured severity called ``name`` (any case)."""
        for key, severity in self.severities.items():
            if key.lower() == name.lower():
                return key, severity
        return None

    def escalation_for(self, severity: Severity) -> list[EscalationStep]:
        return self.escalation if severity.escalation is None else severity.escalation


def _duration_seconds(text: str, maximum: timedelta) -> int:
    try:
        return int(parse_duration(text, maximum=maximum).total_seconds())
    except ValueError as exc:
        raise ValueError(str(exc).replace("`", "")) from None


class Watch(Strict):
    """Which services to watch in the background, how often, and when their state changes."""

    services: list[str] | Literal["all"] = "all"
    environments: list[str] = Field(min_length=1)
    interval: str = "1m"
    failures: int = Field(default=3, ge=1, le=100)
    window: str = "5m"
    slow_checks: int = Field(default=3, ge=1, le=100)
    recover_checks: int = Field(default=2, ge=1, le=100)

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        _duration_seconds(value, timedelta(hours=1))
        return value

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        _duration_seconds(value, timedelta(days=1))
        return value

    @property
    def interval_seconds(self) -> int:
        return _duration_seconds(self.interval, timedelta(hours=1))

    @property
    def window_seconds(self) -> int:
        return _duration_seconds(self.window, timedelta(days=1))


class HealthSettings(Strict):
    """How `/ops health` probes (caps that keep one slow fleet from hurting the bot) and what it watches."""

    concurrency: int = Field(default=20, ge=1, le=500)
    max_body_kb: int = Field(default=1024, ge=1, le=65_536)
    max_redirects: int = Field(default=5, ge=0, le=20)
    watches: list[Watch] = Field(default_factory=list)


class OpsConfig(Strict):
    channels: Channels
    roles: Roles
    environments: dict[str, Environment] = Field(default_factory=dict)
    services: dict[str, Service] = Field(default_factory=dict)
    default_service: str | None = None
    deploys: Deploys = Field(default_factory=Deploys)
    flags: Flags = Field(default_factory=Flags)
    incidents: Incidents = Field(default_factory=Incidents)
    health: HealthSettings = Field(default_factory=HealthSettings)

    @field_validator("environments", "services")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not NAME.match(name):
                raise ValueError(f"{name!r} is not a valid name (lowercase letters, digits, '-', '_', '.')")
        return value

    @model_validator(mode="after")
    def _references(self) -> "OpsConfig":
        problems = []
        for service_name, service in self.services.items():
            for env in service.environments:
                if env not in self.environments:
                    problems.append(f"services.{service_name}.environments.{env}: unknown environment (known: {', '.join(self.environments) or 'none'})")
        if self.default_service is not None and self.default_service not in self.services:
            problems.append(f"default_service: unknown service {self.default_service!r}")
        problems.extend(self.flags.problems(self.environments, self.services))
        problems.extend(watch_problems(self))
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def watched(self) -> dict[tuple[str, str], Watch]:
        """Every watched (service, environment) and the watch that covers it."""
        return {target: watch for target, watch, _ in _watch_targets(self) if target is not None}


def _watch_targets(config: OpsConfig) -> list[tuple[tuple[str, str] | None, Watch, str]]:
    """(target, watch, problem) for each target a watch names; target is None when it names a problem."""
    found: list[tuple[tuple[str, str] | None, Watch, str]] = []
    for i, watch in enumerate(config.health.watches):
        where = f"health.watches[{i}]"
        names = list(config.services) if watch.services == "all" else watch.services
        matched = 0
        for name in names:
            service = config.services.get(name)
            if service is None:
                found.append((None, watch, f"{where}.services: unknown service {name!r}"))
                continue
            for env in watch.environments:
                if env not in config.environments:
                    found.append((None, watch, f"{where}.environments: unknown environment {env!r}"))
                elif env in service.environments and service.environments[env].health:
                    found.append(((name, env), watch, where))
                    matched += 1
                elif watch.services != "all":
                    found.append((None, watch, f"{where}: services.{name}.environments.{env} has no health checks to watch"))
        if matched == 0 and watch.services == "all" and all(env in config.environments for env in watch.environments):
            found.append((None, watch, f"{where}: no service has health checks in {', '.join(watch.environments)}"))
    return found


def watch_problems(config: OpsConfig) -> list[str]:
    """Watches naming unknown or unchecked services, and targets two watches both claim."""
    problems: list[str] = []
    seen: dict[tuple[str, str], str] = {}
    for target, _, where in _watch_targets(config):
        if target is None:
            problems.append(where)
        elif target in seen:
            problems.append(f"{where}: {target[0]} in {target[1]} is already watched by {seen[target]}")
        else:
            seen[target] = where
    return list(dict.fromkeys(problems))


class ConfigError(Exception):
    """The config cannot be used; ``errors`` holds one line per problem, each starting with its path."""

    def __init__(self, source: str, errors: list[str]) -> None:
        super().__init__(f"{source}: {len(errors)} error(s)\n" + "\n".join(errors))
        self.source = source
        self.errors = errors


def _path(loc: tuple[Any, ...]) -> str:
    text = ""
    previous: Any = None
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif previous == "deploy" and part in {"command", "webhook", "github_actions"}:
            pass  # pydantic's discriminator tag, not a key the user wrote
        elif previous == "provider" and part in {"sql", "unleash"}:
            pass
        else:
            text += ("." if text else "") + str(part)
        previous = part
    return text or "(top level)"


def parse_config(data: Any, source: str = "<config>") -> OpsConfig:
    """Validate already-loaded YAML data; raise ConfigError naming each problem's path."""
    if not isinstance(data, dict):
        raise ConfigError(source, ["(top level): expected a mapping of keys (channels, roles, …)"])
    try:
        return OpsConfig.model_validate(data)
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "value_error" and not err["loc"]:
                errors.extend(message.split("; "))  # cross-reference errors carry their own paths
            else:
                errors.append(f"{_path(tuple(err['loc']))}: {message}")
        raise ConfigError(source, errors) from None


def load_config(path: Path) -> OpsConfig:
    """Read and validate the YAML file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), [f"(file): not found; set OPSBOT_CONFIG or copy opsbot.example.yml to {path}"]) from None
    except OSError as exc:
        raise ConfigError(str(path), [f"(file): cannot be read: {exc.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(str(path), [f"{where}: invalid YAML: {problem}"]) from None
    return parse_config(data, str(path))


def dump_config(config: OpsConfig) -> str:
    """``config`` as YAML that loads back to an equal config."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
