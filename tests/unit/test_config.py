"""The ops config: the shipped example loads; mistakes are reported one per line with their path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bot.config import ConfigError, _FastUniqueKeyLoader, _UniqueKeyLoader, dump_config, load_config, parse_config, services
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


def test_invalid_yaml_names_what_was_found_there(tmp_path: Path) -> None:
    path = tmp_path / "opsbot.yml"
    path.write_text("channels:\n  deployments: *deploys\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.errors == ["line 2, column 16: invalid YAML: found undefined alias 'deploys'"]


def test_the_example_config_reads_the_same_through_libyaml_and_python() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert yaml.load(text, Loader=_FastUniqueKeyLoader) == yaml.load(text, Loader=_UniqueKeyLoader)


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


@pytest.mark.parametrize(
    "url",
    ["https://x-access-token:ghp_S3CRET@api.github.com", "https://ghp_S3CRET@ghe.example.com/api/v3"],
)
def test_a_ci_api_url_with_credentials_is_refused_without_echoing_them(url: str) -> None:
    errors = errors_of(config_data(services={"api": ci_service(api_url=url)}))
    (error,) = [e for e in errors if e.startswith("services.api.ci.api_url:")]
    assert "must not carry a user name or password (put the token in the environment variable named by token_env)" in error
    assert "S3CRET" not in " ".join(errors)


def test_a_ci_api_url_over_plain_http_is_refused_unless_github_is_this_machine() -> None:
    errors = errors_of(config_data(services={"api": ci_service(api_url="http://ghe.example.com/api/v3")}))
    assert any(
        e.startswith("services.api.ci.api_url:")
        and "must use https:// (ghe.example.com is not this machine, and the token would travel unencrypted)" in e
        for e in errors
    ), errors
    for local in ("http://127.0.0.1:8080", "http://localhost:9000/api", "http://[::1]:8080", "https://ghe.example.com"):
        ci = parse_config(config_data(services={"api": ci_service(api_url=local)}), "test.yml").services["api"].ci
        assert ci is not None and ci.api_url == local
    errors = errors_of(config_data(services={"api": ci_service(api_url="https://api.github.com:99999")}))
    assert any(e.startswith("services.api.ci.api_url:") and "not a URL (Port out of range" in e for e in errors), errors


def test_ci_poll_seconds_has_a_floor_for_githubs_rate_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    errors = errors_of(config_data(services={"api": ci_service(poll_seconds=0.001)}))
    assert any(
        e.startswith("services.api.ci.poll_seconds:")
        and "must be at least 5 s" in e
        and "GitHub allows a token 5,000 requests an hour" in e
        for e in errors
    ), errors
    ci = parse_config(config_data(services={"api": ci_service(poll_seconds=5)}), "test.yml").services["api"].ci
    assert ci is not None and ci.poll_seconds == 5
    monkeypatch.setattr(services, "MIN_POLL_SECONDS", 0.1)  # read when the config is validated
    ci = parse_config(config_data(services={"api": ci_service(poll_seconds=0.3)}), "test.yml").services["api"].ci
    assert ci is not None and ci.poll_seconds == 0.3


@pytest.mark.parametrize(
    ("checks", "said"),
    [
        (["build", ""], "a check name must not be empty"),
        (["build", "  "], "a check name must not be empty"),
        (["build", "test", "build"], "'build' is listed twice"),
    ],
)
def test_required_checks_must_be_named_once_each(checks: list[str], said: str) -> None:
    errors = errors_of(config_data(services={"api": ci_service(required_checks=checks)}))
    assert any(e.startswith("services.api.ci.required_checks:") and said in e for e in errors), errors


def test_a_github_actions_provider_takes_no_credentials_in_its_api_url_and_https_off_this_machine() -> None:
    data = config_data()
    provider = {"type": "github_actions", "repo": "example/api", "workflow": "deploy.yml"}
    data["services"]["api"]["deploy"] = {**provider, "api_url": "https://x-access-token:ghp_SECRET@github.example"}
    (error,) = errors_of(data)
    assert "must not carry a user name or password" in error and "ghp_SECRET" not in error
    data["services"]["api"]["deploy"] = {**provider, "api_url": "http://github.example"}
    assert "must use https://" in errors_of(data)[0]
    data["services"]["api"]["deploy"] = {**provider, "api_url": "http://127.0.0.1:8080"}
    assert parse_config(data, "test").services["api"].deploy is not None
