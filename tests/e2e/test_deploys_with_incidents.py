"""Deploys meet incidents: deploy events reach an open incident; an incident freeze is a held deploy lock."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import OpsConfig
from tests.deploy_kit import ServiceDouble, deploy_config, services_double, state_dir  # noqa: F401 - fixtures
from tests.e2e.incident_helpers import declare, posts
from tests.e2e.test_deploys import posted
from tests.support import Bot, eventually


@pytest.fixture
def config(state_dir: Path, services_double: ServiceDouble) -> OpsConfig:
    return deploy_config(state_dir, services_double.base_url)


@pytest.fixture
def app(opsbot: Bot, config: OpsConfig) -> Bot:
    return opsbot  # events go to the incidents listener wired by build_services


def test_a_deploy_of_a_service_with_an_open_incident_lands_on_its_timeline(app: Bot) -> None:
    channel = declare(app)
    app.command("deploy v2.0.0 to staging")
    posted(app, "✅ Deployment of v2.0.0 to staging completed")
    started = eventually(lambda: posts(app, channel.id, "deploy.started"))
    done = eventually(lambda: posts(app, channel.id, "deploy.succeeded"))
    assert "api/staging" in started[0].seen() and "by @U0DEV" in done[0].seen()


def test_a_deploy_refused_by_an_incident_freeze_can_wait_for_its_resolution(app: Bot) -> None:
    channel = declare(app)
    app.command("incident freeze staging", channel=channel.id)
    refused = app.command("deploy v2.0.0 to staging", user="U0DEV2")
    assert "deploy freeze for INC-1" in refused.seen()
    app.click(refused, "Notify me when free", "U0DEV2")
    app.command("incident resolve Fixed", channel=channel.id)
    dm = app.emulator.wait_for(lambda: [m for m in app.emulator.visible() if m.channel == "D0DEV2"])
    assert "*deploy/api/staging* is free: INC-1 was resolved" in dm[0].seen()
