"""The ops config: the shipped example loads; mistakes are reported one per line with their path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.config import ConfigError, dump_config, load_config, parse_config
from tests.support import config_data

EXAMPLE = Path(__file__).resolve().parents[2] / "opsbot.example.yml"


def errors_of(data: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "test.yml")
    return caught.value.errors


def test_the_example_config_is_valid_and_round_trips() -> None:
    config = load_config(EXAMPLE)
    assert config.environments["production"].approvals == 2
    assert str(config.environments["production"].freeze_windows[0]) == "SUN 02:00-04:00 UTC"
    assert parse_config(__import__("yaml").safe_load(dump_config(config))) == config


def test_each_error_names_its_path() -> None:
    data = config_data(
        channels={"deployments": "#deploys", "incidents": "C0INC", "alerts": "C0AL"},
        roles={"admin": ["alice"], "approver": [], "deployer": []},
        environments={"production": {"approvals": -1, "freeze_windows": ["SUNDAY"]}},
    )
    errors = errors_of(data)
    assert any(e.startswith("channels.deployments: '#deploys' is not a Slack channel ID") for e in errors), errors
    assert any(e.startswith("roles.admin: 'alice' is not a Slack user ID") for e in errors), errors
    assert any(e.startswith("environments.production.approvals:") for e in errors), errors
    assert any(e.startswith("environments.production.freeze_windows:") and "SUNDAY" in e for e in errors), errors


def test_a_typo_in_a_key_is_an_error_not_ignored() -> None:
    data = config_data(environments={"production": {"aprovals": 2}})
    assert any(e.startswith("environments.production.aprovals: Extra inputs are not permitted") for e in errors_of(data))


def test_a_service_in_an_unknown_environment_is_named() -> None:
    data = config_data()
    data["services"]["api"]["environments"] = ["staging", "prod"]
    assert "services.api.environments.prod: unknown environment (known: staging, production)" in errors_of(data)


def test_deploy_provider_errors_point_into_the_provider() -> None:
    data = config_data()
    data["services"]["api"]["deploy"] = {"type": "webhook", "url": "ftp://x"}
    errors = errors_of(data)
    assert any(e.startswith("services.api.deploy.url:") for e in errors), errors
    assert any(e.startswith("services.api.deploy.secret_env: Field required") for e in errors), errors


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "opsbot.yml"
    path.write_text("channels:\n  deployments: C0D\n  alerts: [unclosed\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.errors[0].startswith("line ")


def test_missing_file_says_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape("copy opsbot.example.yml")):
        load_config(tmp_path / "nope.yml")


def test_promotion_gates_that_form_a_cycle_are_an_error() -> None:
    data = config_data()
    data["environments"]["staging"]["requires_verified_in"] = "production"
    data["environments"]["production"]["requires_verified_in"] = "staging"
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "test")
    assert any("the gates form a cycle (production → staging → production)" in e for e in caught.value.errors)


def test_paging_without_pagerduty_and_pagerduty_maps_naming_unknown_things_are_errors() -> None:
    data = config_data(incidents={"severities": {"P1": {"page": True}}})
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "test")
    assert "incidents.severities.P1.page: pages need a `pagerduty:` section" in caught.value.errors
    data = config_data(pagerduty={"severities": {"P7": "critical"}, "escalation_policies": {"nosuch": "PABC123"}})
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "test")
    assert any(e.startswith("pagerduty.severities.P7: unknown severity") for e in caught.value.errors)
    assert any(e.startswith("pagerduty.escalation_policies.nosuch: unknown service") for e in caught.value.errors)


def ci_service(**ci: object) -> dict[str, object]:
    return {
        "environments": ["staging", "production"],
        "deploy": {"type": "command", "argv": ["./deploy.sh"]},
        "ci": {"repo": "example/api", **ci},
    }


def test_a_ci_gate_takes_githubs_defaults_and_names_its_token_as_a_secret() -> None:
    config = parse_config(config_data(services={"api": ci_service()}), "test.yml")
    ci = config.services["api"].ci
    assert ci is not None and (ci.provider, ci.token_env, ci.api_url) == ("github", "GITHUB_TOKEN", "https://api.github.com")
    assert (ci.ci_timeout_minutes, ci.poll_seconds, ci.environments) == (30, 15, None)
    assert ("services.api.ci.token_env", "GITHUB_TOKEN") in config.secret_variables()


def test_a_ci_gate_must_name_the_services_environments_and_a_real_repo() -> None:
    errors = errors_of(config_data(services={"api": ci_service(environments=["prod"], repo="not a repo")}))
    assert any(e.startswith("services.api.ci.repo:") for e in errors), errors
    errors = errors_of(config_data(services={"api": ci_service(environments=["prod"])}))
    assert any("services.api.ci.environments: 'prod' is not an environment of api" in e for e in errors), errors


def test_a_ci_gate_needs_a_deploy_provider_and_a_positive_timeout() -> None:
    service = ci_service(ci_timeout_minutes=0)
    errors = errors_of(config_data(services={"api": service}))
    assert any(e.startswith("services.api.ci.ci_timeout_minutes:") for e in errors), errors
    errors = errors_of(config_data(services={"api": {"environments": ["staging"], "ci": {"repo": "example/api"}}}))
    assert any("services.api.ci: a CI gate needs a `deploy:` provider" in e for e in errors), errors


def test_alertmanager_severities_must_name_configured_incident_severities() -> None:
    data = config_data()
    data["alertmanager"] = {"severities": {"critical": "P1", "page": "SEV0"}}
    (error,) = errors_of(data)
    assert error.startswith("alertmanager.severities.page: unknown incident severity 'SEV0' (known: P0")
    default = parse_config(config_data(), "test").alertmanager
    assert default.incident_severity("critical") == "P1" and default.incident_severity("P0") == "P0"
    assert default.incident_severity(None) is None
