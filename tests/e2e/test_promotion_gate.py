"""The promotion gate (`environments.production.requires_verified_in: staging`) through signed Slack requests:
a version that did not succeed in staging is refused for production, saying what happened there; `--hotfix`
passes it only with an admin's approval, shown on the request and audited."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis

from bot.config import ConfigError, OpsConfig, parse_config
from bot.console.slack_emulator import Posted, SlackEmulator
from tests.deploy_kit import (  # noqa: F401 - fixtures
    RecordedEvents,
    ServiceDouble,
    deploy_config_data,
    deployed_log,
    services_double,
    state_dir,
)
from tests.support import Bot

DEPLOYS = "C0DEPLOYS"


@pytest.fixture
def config(state_dir: Path, services_double: ServiceDouble) -> OpsConfig:
    data = deploy_config_data(state_dir, services_double.base_url, production={"requires_verified_in": "staging"})
    return parse_config(data, "test")


@pytest.fixture
def app(emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str, config: OpsConfig) -> Bot:
    return Bot(
        emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=config, events=RecordedEvents()
    )


def posted(app: Bot, text: str, timeout: float = 10.0) -> Posted:
    return app.emulator.wait_for(
        lambda: next((m for m in reversed(app.emulator.in_channel(DEPLOYS)) if text in m.seen()), None), timeout
    )


def audit_rows(app: Bot, action: str) -> list[dict[str, Any]]:
    """The audit rows of ``action``, their params decoded."""
    rows = [dict(r) for r in app.services.adapters.audit.rows() if r["action"] == action]  # type: ignore[attr-defined]
    for row in rows:
        row["params"] = json.loads(row["params"]) if isinstance(row["params"], str) else row["params"]
    return rows


def test_a_version_never_deployed_to_staging_is_refused_for_production_and_nothing_happens(app: Bot) -> None:
    reply = app.command('deploy v1.2.3 api to production --reason "release 42"')
    assert reply.ephemeral_to == "U0DEV"
    assert "production only takes versions verified in staging" in reply.seen()
    assert "v1.2.3 was never deployed to staging" in reply.seen() and "--hotfix" in reply.seen()
    assert not [m for m in app.emulator.in_channel(DEPLOYS) if "Approval needed" in m.seen()]
    assert app.reads.deploys.history(None, None, 10) == []  # type: ignore[union-attr]
    assert "No locks are held" in app.command("locks", user="U0VIEWER").seen()
    (refusal,) = audit_rows(app, "deploy.refused")
    assert refusal["outcome"] == "not_verified" and refusal["error"] == "v1.2.3 was never deployed to staging"
    assert ("U0DEV", "command.deploy", "not_verified") in app.audit_actions()


def test_a_version_that_failed_verification_in_staging_is_refused_naming_when_and_how_it_ended(
    app: Bot, services_double: ServiceDouble
) -> None:
    services_double.unhealthy.add("api/staging")
    app.command("deploy v1.2.3 api to staging")
    posted(app, "❌ Deployment of v1.2.3 to staging failed verification")
    (failed,) = app.reads.deploys.history("api", "staging", 5)  # type: ignore[union-attr]
    assert failed.started_at is not None

    reply = app.command('deploy v1.2.3 api to production --reason "release 42"').seen()
    when = f"{failed.started_at:%Y-%m-%d %H:%M} UTC"
    assert f"v1.2.3 was last deployed to staging at {when} ({failed.id}) and failed" in reply
    (refusal,) = audit_rows(app, "deploy.refused")
    assert refusal["params"]["last_state"] == "failed" and refusal["params"]["last_there"] == failed.id


def test_a_version_verified_in_staging_goes_to_production_as_usual(app: Bot, state_dir: Path) -> None:
    app.command("deploy v1.2.3 api to staging")
    posted(app, "✅ Deployment of v1.2.3 to staging completed")
    other = app.command('deploy v1.2.4 api to production --reason "release 43"').seen()
    assert "v1.2.4 was never deployed to staging" in other  # the gate is about the version, not the service

    reply = app.command('deploy v1.2.3 api to production --reason "release 42"').seen()
    assert "waiting for 2 approvals in" in reply and "hotfix" not in reply
    request = posted(app, "Approval needed: Deploy v1.2.3 of api to production")
    assert "0 of 2" in request.seen() and "Promotion gate" not in request.seen()
    app.click(request, "Approve", "U0APPROVER1")
    app.click(request, "Approve", "U0APPROVER2")
    posted(app, "✅ Deployment of v1.2.3 to production completed")
    assert [line.split()[:3] for line in deployed_log(state_dir)] == [
        ["api", "staging", "v1.2.3"],
        ["api", "production", "v1.2.3"],
    ]


def test_a_hotfix_passes_the_gate_only_with_an_admins_approval_shown_loudly_and_audited(app: Bot, state_dir: Path) -> None:
    reply = app.command('deploy v1.2.9 api to production --hotfix --reason "checkout down"').seen()
    assert "and an admin's (hotfix past the promotion gate: v1.2.9 was never deployed to staging)" in reply
    request = posted(app, "Approval needed: ⚠️ HOTFIX, promotion gate bypassed: deploy v1.2.9 of api to production")
    seen = request.seen()
    assert "0 of 3 (one from an admin)" in seen
    assert "*Promotion gate*\n⚠️ BYPASSED by --hotfix: v1.2.9 was never deployed to staging" in seen
    app.click(request, "Approve", "U0APPROVER1")
    app.click(request, "Approve", "U0APPROVER2")
    assert "Approval needed" in app.emulator.find(request.ts).seen()  # two approvers, but no admin yet
    assert deployed_log(state_dir) == []
    app.click(request, "Approve", "U0ADMIN")
    posted(app, "✅ Deployment of v1.2.9 to production completed")

    (requested,) = audit_rows(app, "deploy.requested")
    assert requested["params"]["hotfix"] is True
    assert requested["params"]["gate_bypassed"] == "v1.2.9 was never deployed to staging"


def test_the_dry_run_shows_the_gate(app: Bot) -> None:
    refused = app.command("deploy v1.2.3 api to production --dry-run").seen()
    assert "*Promotion gate*\n🚧 v1.2.3 was never deployed to staging, so it would be refused" in refused
    bypassed = app.command('deploy v1.2.3 api to production --hotfix --reason "x" --dry-run').seen()
    assert "With `--hotfix` the gate would be bypassed: an admin's approval on top" in bypassed
    assert "plus an admin (hotfix past the promotion gate)" in bypassed and "@U0ADMIN" in bypassed
    assert "Promotion gate" not in app.command("deploy v1.2.3 api to staging --dry-run").seen()
    assert app.reads.deploys.history(None, None, 10) == []  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("gate", "expected"),
    [
        ("production", "environments.production.requires_verified_in: an environment cannot require verification in itself"),
        ("qa", "environments.production.requires_verified_in: unknown environment 'qa' (known: staging, production)"),
    ],
)
def test_the_gate_must_name_another_known_environment(
    state_dir: Path, services_double: ServiceDouble, gate: str, expected: str
) -> None:
    data = deploy_config_data(state_dir, services_double.base_url, production={"requires_verified_in": gate})
    with pytest.raises(ConfigError) as raised:
        parse_config(data, "test")
    assert any(expected in line for line in raised.value.errors)


def test_a_gated_service_without_the_source_environment_is_a_config_error(
    state_dir: Path, services_double: ServiceDouble
) -> None:
    data = deploy_config_data(state_dir, services_double.base_url, production={"requires_verified_in": "staging"})
    data["services"]["solo"] = {"environments": ["production"]}
    with pytest.raises(ConfigError) as raised:
        parse_config(data, "test")
    assert any("services.solo: deploys to production need staging first" in line for line in raised.value.errors)
