"""Deploys meet incidents: deploys and rollbacks reach an open incident (also from a real worker); a freeze is a held
deploy lock that refuses deploys, which a rollback takes over and gives back when it ends."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis

from bot.config import OpsConfig
from bot.console.slack_emulator import Channel, Posted, SlackEmulator
from tests.deploy_kit import ServiceDouble, deploy_config, deployed_log, services_double, state_dir  # noqa: F401 - fixtures
from tests.e2e.incident_helpers import declare, posts
from tests.e2e.test_deploys import approval_for, posted
from tests.e2e.test_rollbacks import deploy_to_production
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


def test_a_rollback_approved_during_an_incident_is_in_its_channel_timeline_and_post_mortem(app: Bot, state_dir: Path) -> None:
    deploy_to_production(app, "v1.2.2")
    deploy_to_production(app, "v1.2.3")  # before the incident: not on its timeline
    channel = declare(app)

    reply = app.command('rollback api production --reason "checkout errors since v1.2.3"', channel=channel.id)
    assert "Roll back api to v1.2.2 in production" in reply.seen() and "waiting for 1 approval" in reply.seen()
    app.click(approval_for(app, "Roll back api to v1.2.2 in production"), "Approve", "U0APPROVER1")
    posted(app, "⚠️ Rolled back api to v1.2.2 in production due to checkout errors since v1.2.3")
    assert deployed_log(state_dir)[-1].split()[:3] == ["api", "production", "v1.2.2"]  # the deploy program really ran

    started = eventually(lambda: posts(app, channel.id, "rollback.started"))
    done = eventually(lambda: posts(app, channel.id, "rollback.done"))
    assert "api/production · rollback of api to v1.2.2 in production started" in started[0].seen()
    assert "rollback of api to v1.2.2 in production succeeded (reason: checkout errors since v1.2.3)" in done[0].seen()
    timeline = app.command("incident timeline", channel=channel.id).seen()
    assert "*Service event* · @U0DEV · rollback.started · api/production" in timeline
    assert "*Service event* · @U0DEV · rollback.done · api/production · rollback of api to v1.2.2" in timeline
    assert "v1.2.3 to production" not in timeline

    assert "INC-1 is resolved" in app.command('incident resolve "Rolled back to v1.2.2"', channel=channel.id).seen()
    draft = app.command("incident postmortem 1", user="U0VIEWER").seen()
    timeline_part = draft.split("## Timeline (UTC)", 1)[1].split("## Deploys, rollbacks and flag changes", 1)[0]
    changes = draft.split("## Deploys, rollbacks and flag changes during the incident", 1)[1].split("## Root cause", 1)[0]
    assert (
        "Service event · @U0DEV · rollback.done · api/production · rollback of api to v1.2.2 in production succeeded"
        in timeline_part
    )
    assert "rollback.started" in changes and "rollback.done" in changes and "deploy.succeeded" not in changes
    assert "## Summary\n\nRolled back to v1.2.2" in draft


def test_a_rollback_run_by_a_real_worker_reaches_the_incident_from_the_worker_process(
    emulator: SlackEmulator,
    pg_url: str,
    redis_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    config: OpsConfig,
    tmp_path: Path,
) -> None:
    app = Bot(
        emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=config, redis_url=redis_url
    )
    with app.worker(tmp_path):
        for version in ("v2.0.0", "v2.1.0"):
            app.command(f"deploy {version} to staging")
            posted(app, f"✅ Deployment of {version} to staging completed", timeout=30)
        channel = declare(app)
        app.command("incident freeze staging", channel=channel.id)
        reply = app.command('rollback api staging --reason "errors since v2.1.0"', channel=channel.id)
        assert "took the lock over from the deploy freeze of INC-1" in reply.seen()
        posted(app, "⚠️ Rolled back api to v2.0.0 in staging", timeout=30)
        done = app.emulator.wait_for(lambda: posts(app, channel.id, "rollback.done"), timeout=10)
        app.emulator.wait_for(lambda: posts(app, channel.id, "deploy/api/staging is frozen again for INC-1"), timeout=10)
    assert "rollback of api to v2.0.0 in staging succeeded (reason: errors since v2.1.0)" in done[0].seen()
    assert "deploy freeze for INC-1" in app.command("deploy v2.2.0 to staging").seen()  # the worker took the freeze back
    timeline = app.command("incident timeline", channel=channel.id).seen()
    assert "rollback.started" in timeline and "rollback.done" in timeline and "v2.1.0 to staging" not in timeline


def frozen_production(app: Bot) -> Channel:
    """v1.2.2 then v1.2.3 in production, an incident for api, and its freeze of production."""
    deploy_to_production(app, "v1.2.2")
    deploy_to_production(app, "v1.2.3")
    channel = declare(app)
    assert "Locked now: `deploy/api/production`" in app.command("incident freeze production", channel=channel.id).seen()
    return channel


def rollback_id(reply: Posted) -> str:
    match = re.search(r"\((r-[0-9a-f]{8})\)", reply.seen())
    assert match, reply.seen()
    return match.group(1)


def test_a_rollback_takes_over_an_incident_freeze_and_the_freeze_is_back_once_it_has_run(app: Bot, state_dir: Path) -> None:
    channel = frozen_production(app)
    refused = app.command('deploy v1.2.4 to production --reason "more"', user="U0DEV2")
    assert "Your deploy of v1.2.4 was refused" in refused.seen() and "deploy freeze for INC-1" in refused.seen()

    reply = app.command('rollback api production --reason "checkout errors since v1.2.3"', channel=channel.id)
    rid = rollback_id(reply)
    assert "waiting for 1 approval" in reply.seen()
    assert "took the lock over from the deploy freeze of INC-1" in reply.seen()
    taken = posts(app, channel.id, f"asked for rollback {rid}, which takes over the freeze of deploy/api/production")
    assert taken and "@U0DEV" in taken[0].seen()
    request = approval_for(app, "Roll back api to v1.2.2 in production")
    assert "taken over from the deploy freeze of INC-1 until it ends" in request.seen()
    assert f"rollback to v1.2.2 ({rid})" in app.command("locks", user="U0VIEWER").seen()

    app.click(request, "Approve", "U0APPROVER1")
    done = posted(app, "⚠️ Rolled back api to v1.2.2 in production")
    assert "Deploys of api in production are frozen again for INC-1 until it is resolved" in done.seen()
    assert deployed_log(state_dir)[-1].split()[:3] == ["api", "production", "v1.2.2"]
    again = eventually(lambda: posts(app, channel.id, "deploy/api/production is frozen again for INC-1"))
    assert f"rollback to v1.2.2 ({rid}) finished" in again[0].seen()

    refused = app.command('deploy v1.2.4 to production --reason "more"', user="U0DEV2")
    assert "Your deploy of v1.2.4 was refused" in refused.seen() and "deploy freeze for INC-1" in refused.seen()
    timeline = app.command("incident timeline", channel=channel.id).seen()
    assert f"rollback {rid} took over the freeze of deploy/api/production" in timeline
    assert f"deploys frozen again: deploy/api/production (rollback to v1.2.2 ({rid}) finished)" in timeline
    assert ("U0DEV", "rollback.freeze_taken_over", "ok") in app.audit_actions()
    assert ("opsbot", "rollback.freeze_given_back", "ok") in app.audit_actions()

    app.command("incident resolve Fixed", channel=channel.id)
    assert "No locks are held" in app.command("locks", user="U0VIEWER").seen()


def test_a_cancelled_rollback_gives_the_lock_back_to_the_freeze(app: Bot) -> None:
    channel = frozen_production(app)
    rid = rollback_id(app.command('rollback api production --reason "checkout errors"', channel=channel.id))
    app.command(f"cancel {rid}")
    again = eventually(lambda: posts(app, channel.id, "deploy/api/production is frozen again for INC-1"))
    assert f"rollback to v1.2.2 ({rid}) was cancelled" in again[0].seen()
    assert "deploy freeze for INC-1" in app.command('deploy v1.2.4 to production --reason "more"').seen()
    # The freeze taken back is recorded like the first one: the next rollback can take it over again.
    again_reply = app.command('rollback api production --reason "again"', channel=channel.id)
    assert "took the lock over from the deploy freeze of INC-1" in again_reply.seen()


def test_a_failed_rollback_gives_the_lock_back_to_the_freeze(app: Bot, services_double: ServiceDouble) -> None:
    channel = frozen_production(app)
    services_double.unhealthy.add("api/production")
    rid = rollback_id(app.command('rollback api production --reason "checkout errors"', channel=channel.id))
    app.click(approval_for(app, "Roll back api to v1.2.2 in production"), "Approve", "U0APPROVER1")
    posted(app, "❌ Rollback of api to v1.2.2 in production failed verification")
    again = eventually(lambda: posts(app, channel.id, "deploy/api/production is frozen again for INC-1"))
    assert f"rollback to v1.2.2 ({rid}) failed" in again[0].seen()
    assert "deploy freeze for INC-1" in app.command('deploy v1.2.4 to production --reason "more"').seen()


def test_the_incident_channel_is_told_when_the_freeze_cannot_be_taken_back(app: Bot) -> None:
    channel = frozen_production(app)
    rid = rollback_id(app.command('rollback api production --reason "checkout errors"', channel=channel.id))
    app.command('unlock api production --reason "mine now"', user="U0ADMIN")
    app.command('lock api production --reason "db migration"', user="U0ADMIN")
    app.click(approval_for(app, "Roll back api to v1.2.2 in production"), "Approve", "U0APPROVER1")
    lost = eventually(lambda: posts(app, channel.id, "could not be frozen again"))
    assert f"deploy/api/production could not be frozen again after rollback to v1.2.2 ({rid})" in lost[0].seen()
    assert "held by @U0ADMIN for a held by hand: db migration" in lost[0].seen()
    assert "Run `/ops incident freeze` here once it is free" in lost[0].seen()
    timeline = app.command("incident timeline", channel=channel.id).seen()
    assert f"deploy/api/production could not be frozen again after rollback {rid}" in timeline
    assert ("U0APPROVER1", "rollback.freeze_given_back", "conflict") in app.audit_actions()


def test_a_rollback_is_still_refused_by_a_lock_that_is_not_an_incident_freeze(app: Bot) -> None:
    deploy_to_production(app, "v1.2.2")
    deploy_to_production(app, "v1.2.3")
    channel = declare(app)
    app.command("incident freeze staging", channel=channel.id)  # the incident holds a freeze, but not this lock
    app.command('lock api production --reason "deploy freeze for INC-1: Checkout errors"')  # the purpose text mimics one
    refused = app.command('rollback api production --reason "checkout errors"', channel=channel.id)
    assert "Your rollback to v1.2.2 was refused: *deploy/api/production* is held by @U0DEV" in refused.seen()
    assert "held by hand" in refused.seen()
    app.command('unlock api production --reason "done"', user="U0ADMIN")

    app.command('deploy v1.2.4 to production --reason "next"', user="U0DEV2")  # a pending deploy holds it now
    refused = app.command('rollback api production --reason "checkout errors"', channel=channel.id)
    assert "Your rollback to v1.2.2 was refused" in refused.seen() and "deploy of v1.2.4" in refused.seen()
    assert not posts(app, channel.id, "takes over the freeze")
