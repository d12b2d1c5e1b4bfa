"""The ops config: a YAML file, validated by pydantic, reported error by error with its path.

One module per section: common (channels, roles, environments), services (and deploys), flags,
incidents, health. Everything is importable from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from bot.config.alerting import Alertmanager
from bot.config.common import *  # noqa: F403 - the config's public names, re-exported
from bot.config.common import NAME, AuditSettings, Channels, Environment, Roles, Strict
from bot.config.durability import Durability
from bot.config.flags import *  # noqa: F403
from bot.config.flags import Flags
from bot.config.health import *  # noqa: F403
from bot.config.health import HealthSettings, Watch, _watch_targets, watch_problems
from bot.config.incidents import *  # noqa: F403
from bot.config.incidents import Incidents
from bot.config.metrics import *  # noqa: F403
from bot.config.metrics import Prometheus
from bot.config.paging import PagerDuty
from bot.config.services import *  # noqa: F403
from bot.config.services import Deploys, Service
from bot.config.status_page import StatusPage, status_page_problems


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
    durability: Durability = Field(default_factory=Durability)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    pagerduty: PagerDuty | None = None  # paging through PagerDuty (docs/incidents.md, "Paging")
    alertmanager: Alertmanager = Field(default_factory=Alertmanager)  # docs/alerts.md
    prometheus: Prometheus | None = None  # where metric guardrails are read (docs/metrics.md)
    status_page: StatusPage = Field(default_factory=StatusPage)

    @field_validator("environments", "services")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not NAME.match(name):
                raise ValueError(f"{name!r} is not a valid name (lowercase letters, digits, '-', '_', '.')")
        return value

    @model_validator(mode="after")
    def _references(self) -> OpsConfig:
        problems = []
        for service_name, service in self.services.items():
            for env in service.environments:
                if env not in self.environments:
                    problems.append(
                        f"services.{service_name}.environments.{env}: unknown environment (known: {', '.join(self.environments) or 'none'})"
                    )
        problems.extend(_gate_problems(self))
        problems.extend(_ci_problems(self))
        problems.extend(_checklist_problems(self))
        problems.extend(_paging_problems(self))
        if self.default_service is not None and self.default_service not in self.services:
            problems.append(f"default_service: unknown service {self.default_service!r}")
        problems.extend(self.flags.problems(self.environments, self.services))
        problems.extend(watch_problems(self))
        problems.extend(_metric_problems(self))
        problems.extend(_alert_severity_problems(self))
        problems.extend(status_page_problems(self))
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def secret_variables(self) -> list[tuple[str, str]]:
        """(config path, environment variable) for every secret the config names by variable: deploy providers'
        ``secret_env``/``token_env``, health checks' ``headers_from_env``, flag providers' ``token_env``/``url_env``."""
        named: list[tuple[str, str]] = []
        for service_name, service in self.services.items():
            deploy = service.deploy
            if deploy is not None and deploy.type == "webhook":
                named.append((f"services.{service_name}.deploy.secret_env", deploy.secret_env))
            elif deploy is not None and deploy.type == "github_actions":
                named.append((f"services.{service_name}.deploy.token_env", deploy.token_env))
            if service.ci is not None:
                named.append((f"services.{service_name}.ci.token_env", service.ci.token_env))
            for env_name, env in service.environments.items():
                for i, check in enumerate(env.health):
                    for header, variable in check.headers_from_env.items():
                        named.append(
                            (f"services.{service_name}.environments.{env_name}.health[{i}].headers_from_env.{header}", variable)
                        )
        if self.prometheus is not None and self.prometheus.token_env:
            named.append(("prometheus.token_env", self.prometheus.token_env))
        if self.pagerduty is not None:  # pages and `/ops oncall` fail without them
            named.append(("pagerduty.routing_key_env", self.pagerduty.routing_key_env))
            named.append(("pagerduty.token_env", self.pagerduty.token_env))
        provider = self.flags.provider
        if provider is not None and provider.type == "unleash" and provider.token_env:
            named.append(("flags.provider.token_env", provider.token_env))
        elif provider is not None and provider.type == "sql":
            for env_name, database in provider.databases.items():
                if database.url_env:
                    named.append((f"flags.provider.databases.{env_name}.url_env", database.url_env))
        return named

    def watched(self) -> dict[tuple[str, str], Watch]:
        """Every watched (service, environment) and the watch that covers it."""
        return {target: watch for target, watch, _ in _watch_targets(self) if target is not None}


def _gate_problems(config: OpsConfig) -> list[str]:
    """``environments.<env>.requires_verified_in`` names another known environment, which every service deployed to
    ``<env>`` also has (otherwise no deploy of it could ever pass the gate)."""
    problems = []
    for name, env in config.environments.items():
        source = env.requires_verified_in
        if source is None:
            continue
        where = f"environments.{name}.requires_verified_in"
        if source == name:
            problems.append(f"{where}: an environment cannot require verification in itself")
        elif source not in config.environments:
            problems.append(f"{where}: unknown environment {source!r} (known: {', '.join(config.environments)})")
        else:
            problems += [
                f"services.{service_name}: deploys to {name} need {source} first, but it has no {source} environment"
                for service_name, service in config.services.items()
                if name in service.environments and source not in service.environments
            ]
    for name in config.environments:  # a cycle (staging needs production, production needs staging) passes never
        seen, at = [name], config.environments[name].requires_verified_in
        while at is not None and at in config.environments and at not in seen:
            seen.append(at)
            at = config.environments[at].requires_verified_in
        if at == name and len(seen) > 1 and name == min(seen):
            problems.append(
                f"environments.{name}.requires_verified_in: the gates form a cycle ({' → '.join([*seen, name])}); "
                "no version could ever pass them"
            )
    return problems


def _ci_problems(config: OpsConfig) -> list[str]:
    """``services.<name>.ci.environments`` names environments of that service; a gate needs a deploy provider."""
    problems = []
    for name, service in config.services.items():
        ci = service.ci
        if ci is None:
            continue
        problems += [
            f"services.{name}.ci.environments: {env!r} is not an environment of {name} (it has: {', '.join(service.environments)})"
            for env in ci.environments or []
            if env not in service.environments
        ]
        if service.deploy is None:
            problems.append(f"services.{name}.ci: a CI gate needs a `deploy:` provider to gate")
    return problems


def _checklist_problems(config: OpsConfig) -> list[str]:
    """A checklist is shown on an environment's deploy approval requests: the environment must ask for approvals, and an
    item ``satisfied_by: promotion`` needs that environment's promotion gate (``requires_verified_in``)."""
    problems = []
    for name, env in config.environments.items():
        if env.checklist and env.approvals == 0:
            problems.append(
                f"environments.{name}.checklist: it is shown on approval requests, but {name} needs no approvals "
                "(approvals: 0), so nobody would tick it"
            )
        problems += [
            f"environments.{name}.checklist[{i}].satisfied_by: promotion needs the promotion gate "
            f"(environments.{name}.requires_verified_in)"
            for i, item in enumerate(env.checklist)
            if item.satisfied_by == "promotion" and env.requires_verified_in is None
        ]
        gated = [
            service
            for service, spec in config.services.items()
            if spec.ci is not None
            and name in spec.environments
            and (spec.ci.environments is None or name in spec.ci.environments)
        ]
        problems += [
            f"environments.{name}.checklist[{i}].satisfied_by: ci needs a CI gate (services.<name>.ci) covering {name}: "
            "no service has one, so opsbot would never tick it"
            for i, item in enumerate(env.checklist)
            if item.satisfied_by == "ci" and not gated
        ]
    return problems


def _paging_problems(config: OpsConfig) -> list[str]:
    """`page: true` needs a `pagerduty:` section; its maps name configured severities and services."""
    incidents, pd = config.incidents, config.pagerduty
    problems = []
    paging = [f"incidents.severities.{n}.page" for n, s in incidents.severities.items() if s.page]
    paging += [f"incidents.escalation[{i}].page" for i, step in enumerate(incidents.escalation) if step.page]
    for n, s in incidents.severities.items():
        paging += [f"incidents.severities.{n}.escalation[{i}].page" for i, step in enumerate(s.escalation or []) if step.page]
    if pd is None:
        return [f"{where}: pages need a `pagerduty:` section" for where in paging]
    problems += [
        f"pagerduty.severities.{name}: unknown severity (known: {', '.join(incidents.severities)})"
        for name in pd.severities
        if incidents.severity(name) is None
    ]
    problems += [
        f"pagerduty.escalation_policies.{name}: unknown service (known: {', '.join(config.services) or 'none'})"
        for name in pd.escalation_policies
        if name not in config.services
    ]
    return problems


def _alert_severity_problems(config: OpsConfig) -> list[str]:
    """``alertmanager.severities`` (when set) maps label values to configured incident severities."""
    if "severities" not in config.alertmanager.model_fields_set:
        return []  # the default map: a value it names that is not configured is simply not pre-selected
    known = config.incidents.severities
    return [
        f"alertmanager.severities.{label}: unknown incident severity {severity!r} (known: {', '.join(known)})"
        for label, severity in config.alertmanager.severities.items()
        if severity not in known
    ]


def _metric_problems(config: OpsConfig) -> list[str]:
    if config.prometheus is not None:
        return []
    return [
        f"services.{name}.environments.{env}.metrics: guardrails need a `prometheus:` section (url) to read them from"
        for name, service in config.services.items()
        for env, target in service.environments.items()
        if target.metrics
    ]


class ConfigError(Exception):
    """The config cannot be used; ``errors`` holds one line per problem, each starting with its path."""

    def __init__(self, source: str, errors: list[str]) -> None:
        super().__init__(f"{source}: {len(errors)} error{'' if len(errors) == 1 else 's'}\n" + "\n".join(errors))
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


class _UniqueKeys(yaml.constructor.SafeConstructor):
    """YAML's safe loader, except that a key given twice in one mapping is an error.

    Plain YAML lets the later key win silently (YAML 1.2 says keys must be unique; PyYAML does not check):
    two `production:` entries with `approvals: 2` then `approvals: 0` would drop the two-person rule unseen.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                earlier = first_line.get(key)
            except TypeError:  # an unhashable key: the safe loader's own error names it
                continue
            if earlier is not None:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first on line {earlier + 1}); only one may be given",
                    key_node.start_mark,
                )
            first_line[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


class _UniqueKeyLoader(_UniqueKeys, yaml.SafeLoader):
    """PyYAML's own parser, in Python: its error messages name what it found (``found undefined alias 'x'``)."""


class _FastUniqueKeyLoader(_UniqueKeys, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's parser (a tenth of the time: 20 ms → 2 ms for opsbot.example.yml) with the same constructor."""


def _load_yaml(text: str) -> Any:
    """``text`` read by libyaml; when libyaml refuses it, read again by PyYAML's Python parser, whose answer (or error,
    which names what it found) is the one given. Both are safe loaders: no arbitrary objects.

    libyaml is the more lenient of the two in one place: it takes a tab between a key's colon and its value
    (``key:<TAB>value``), as YAML 1.2 allows, where the Python parser refused it. Where the Python parser fails in a
    way that is not a YAML error (deep nesting exhausts its recursion), libyaml's error is the one given.
    """
    try:
        return yaml.load(text, Loader=_FastUniqueKeyLoader)
    except yaml.YAMLError as fast_error:
        try:
            return yaml.load(text, Loader=_UniqueKeyLoader)
        except RecursionError:
            raise fast_error from None


def load_config(path: Path) -> OpsConfig:
    """Read and validate the YAML file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), [f"(file): not found; set OPSBOT_CONFIG or copy opsbot.example.yml to {path}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), [f"(file): is not UTF-8 text (byte {exc.start + 1}); save it as UTF-8"]) from None
    except OSError as exc:
        raise ConfigError(str(path), [f"(file): cannot be read: {exc.strerror}"]) from None
    try:
        data = _load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(str(path), [f"{where}: invalid YAML: {problem}"]) from None
    return parse_config(data, str(path))


def dump_config(config: OpsConfig) -> str:
    """``config`` as YAML that loads back to an equal config."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
