"""The health part of the ops config: each mistake is reported with the path of the key to fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.config import ConfigError, load_config
from tests.support import make_config

ROOT = Path(__file__).resolve().parents[2]


def errors(services: dict[str, Any] | None = None, **health: Any) -> list[str]:
    services = services or {
        "api": {"environments": {"staging": {}, "production": {"health": [{"url": "https://api.example.com/health"}]}}}
    }
    with pytest.raises(ConfigError) as caught:
        make_config(services=services, health=health)
    return caught.value.errors


def check(**keys: Any) -> dict[str, Any]:
    return {"api": {"environments": {"production": {"health": [{"url": "https://api.example.com/health", **keys}]}}}}


def test_critical_below_warning_is_refused_at_its_path() -> None:
    assert errors(check(warn_ms=900, critical_ms=100)) == [
        "services.api.environments.production.health[0]: critical_ms (100) must not be below warn_ms (900)"
    ]


def test_a_header_variable_must_be_an_environment_variable_name() -> None:
    [error] = errors(check(headers_from_env={"Authorization": "not a name"}))
    assert error.startswith("services.api.environments.production.health[0].headers_from_env:")


def test_a_status_code_must_be_an_http_status() -> None:
    [error] = errors(check(expect_status=[2000]))
    assert "2000 is not an HTTP status code" in error


def test_a_watch_of_an_unknown_service_is_refused() -> None:
    assert errors(watches=[{"services": ["apii"], "environments": ["production"]}]) == [
        "health.watches[0].services: unknown service 'apii'"
    ]


def test_a_watch_of_an_environment_without_checks_is_refused() -> None:
    assert errors(watches=[{"services": ["api"], "environments": ["staging"]}]) == [
        "health.watches[0]: services.api.environments.staging has no health checks or metrics to watch"
    ]


def test_a_service_watched_twice_is_refused() -> None:
    assert errors(watches=[{"environments": ["production"]}, {"services": ["api"], "environments": ["production"]}]) == [
        "health.watches[1]: api in production is already watched by health.watches[0]"
    ]


def test_an_interval_must_be_a_duration() -> None:
    assert errors(watches=[{"environments": ["production"], "interval": "often"}]) == [
        "health.watches[0].interval: often is not a duration like 30m, 2h, 1d or 1h30m"
    ]


def test_watching_all_covers_every_service_with_checks_in_the_environments() -> None:
    config = make_config(
        services={
            "api": {"environments": {"production": {"health": [{"url": "https://api.example.com/health"}]}}},
            "web": {"environments": {"production": {}}},
        },
        health={"watches": [{"environments": ["production"], "interval": "30s"}]},
    )
    assert list(config.watched()) == [("api", "production")]
    assert config.watched()[("api", "production")].interval_seconds == 30


def test_the_example_config_is_valid_and_watches_api_in_production() -> None:
    config = load_config(ROOT / "opsbot.example.yml")
    assert list(config.watched()) == [("api", "production")]
