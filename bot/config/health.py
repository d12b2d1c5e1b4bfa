"""`health`: probe caps and the background watches, with their cross-checks against services."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from bot.config.common import Strict
from bot.config.durations import parse_duration
from bot.config.metric_rules import MetricRule, parse_rule

if TYPE_CHECKING:
    from bot.config import OpsConfig


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
    # "error_rate > 0.05 for 5m -> P0": guardrails by name, read from Prometheus each tick (docs/metrics.md)
    metric_rules: list[str] = Field(default_factory=list, max_length=20)

    @field_validator("metric_rules")
    @classmethod
    def _metric_rules(cls, value: list[str]) -> list[str]:
        rules = [parse_rule(text) for text in value]
        keys = [r.key for r in rules]
        if len(set(keys)) != len(keys):
            raise ValueError("each metric rule is given once")
        return value

    @property
    def rules(self) -> list[MetricRule]:
        return [parse_rule(text) for text in self.metric_rules]

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

    concurrency: int = Field(default=1000, ge=1, le=2000)
    max_body_kb: int = Field(default=1024, ge=1, le=65_536)
    max_redirects: int = Field(default=5, ge=0, le=20)
    watches: list[Watch] = Field(default_factory=list)


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
                elif env in service.environments and (
                    service.environments[env].health or (watch.rules and service.environments[env].metrics)
                ):  # HTTP checks, or metrics for the watch's metric rules (a watch of metric rules only)
                    found.append(((name, env), watch, where))
                    matched += 1
                elif watch.services != "all":
                    found.append(
                        (None, watch, f"{where}: services.{name}.environments.{env} has no health checks or metrics to watch")
                    )
        if matched == 0 and watch.services == "all" and all(env in config.environments for env in watch.environments):
            found.append((None, watch, f"{where}: no service has health checks (or metrics) in {', '.join(watch.environments)}"))
    return found


def watch_problems(config: OpsConfig) -> list[str]:
    """Watches naming unknown or unchecked services, targets two watches both claim, and metric rules naming a
    metric the target does not define or a severity that does not exist."""
    problems: list[str] = []
    seen: dict[tuple[str, str], str] = {}
    for target, watch, where in _watch_targets(config):
        if target is None:
            problems.append(where)
        elif target in seen:
            problems.append(f"{where}: {target[0]} in {target[1]} is already watched by {seen[target]}")
        else:
            seen[target] = where
            problems.extend(_rule_problems(config, target, watch, where))
    return list(dict.fromkeys(problems))


def _rule_problems(config: OpsConfig, target: tuple[str, str], watch: Watch, where: str) -> list[str]:
    service, env = target
    defined = {m.name for m in config.services[service].environments[env].metrics}
    problems = []
    for i, rule in enumerate(watch.rules):
        path = f"{where}.metric_rules[{i}]"
        if rule.metric not in defined:
            known = ", ".join(sorted(defined)) or "none"
            problems.append(
                f"{path}: {service} in {env} defines no metric {rule.metric!r} under "
                f"services.{service}.environments.{env}.metrics (defined: {known})"
            )
        if config.incidents.severity(rule.severity) is None:
            problems.append(
                f"{path}: unknown severity {rule.severity!r} (incidents.severities: {', '.join(config.incidents.severities)})"
            )
    return problems
