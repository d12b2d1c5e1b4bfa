"""Deploys through signed Slack requests: approvals, lock, the real deploy program, verification over HTTP."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from bot.config import OpsConfig
from bot.console.slack_emulator import Posted, SlackEmulator
from tests.deploy_kit import (  # noqa: F401 - fixtures
    WEBHOOK_SECRET_ENV,
    RecordedEvents,
    ServiceDouble,
    WebhookReceiver,
    deploy_config,
    deployed_log,
    services_double,
    state_dir,
)
from tests.support import Bot

DEPLOYS = "C0DEPLOYS"


@pytest.fixture
def config(state_dir: Path, services_double: ServiceDouble) -> OpsConfig:
    return deploy_config(state_dir, services_double.base_url)


@pytest.fixture
def app(emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str, config: OpsConfig) -> Bot:
    return Bot(
        emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=config, events=RecordedEvents()
    )


def posted(app: Bot, text: str, timeout: float = 10.0) -> Posted:
    """The newest message in the deployments channel that contains ``text``."""
    return app.emulator.wait_for(
        lambda: next((m for m in reversed(app.emulator.in_channel(DEPLOYS)) if text in m.seen()), None), timeout
    )


def approval_for(app: Bot, title: str) -> Posted:
    return posted(app, f"Approval needed: {title}")


def test_production_deploy_needs_two_other_approvers_then_runs_verifies_and_announces(app: Bot, state_dir: Path) -> None:
    reply = app.command('deploy v1.2.3 api to production --reason "release 42"', user="U0APPROVER1")
    assert "waiting for 2 approvals" in reply.seen() and reply.ephemeral_to == "U0APPROVER1"
    request = approval_for(app, "Deploy v1.2.3 of api to production")
    assert "release 42" in request.seen() and "0 of 2" in request.seen() and "deploy/api/production" in request.seen()

    refused = app.click(request, "Approve", "U0APPROVER1")
    assert "You requested this deploy; another approver must approve it (the two-person rule)." in refused[-1]["text"]
    app.click(request, "Approve", "U0APPROVER2")
    assert "Approved by @U0APPROVER2" in app.emulator.find(request.ts).seen()
    assert deployed_log(state_dir) == []
    app.click(request, "Approve", "U0APPROVER3")

    done = posted(app, "✅ Deployment of v1.2.3 to production completed")
    started = posted(app, "🚀 Starting deployment of v1.2.3 to production")
    assert started.seq < done.seq
    assert "@U0APPROVER2" in started.seen() and "@U0APPROVER3" in started.seen()
    assert "reporting v1.2.3" in done.seen()
    assert [line.split()[:3] for line in deployed_log(state_dir)] == [["api", "production", "v1.2.3"]]
    assert "No locks are held" in app.command("locks", user="U0VIEWER").seen()
    history = app.command("history api production", user="U0VIEWER").seen()
    assert "v1.2.3" in history and "succeeded" in history and "approved by @U0APPROVER2, @U0APPROVER3" in history
    assert app.services.adapters.events.kinds() == ["deploy.started", "deploy.succeeded"]  # type: ignore[attr-defined]
    actions = [(action, outcome) for _, action, outcome in app.audit_actions()]
    for expected in [
        ("deploy.requested", "ok"),
        ("deploy.approved", "ok"),
        ("deploy.provider_call", "started"),
        ("deploy.provider_result", "ok"),
        ("deploy.verification", "ok"),
        ("deploy.succeeded", "ok"),
    ]:
        assert expected in actions


def test_staging_needs_no_approval_and_deploys_at_once(app: Bot, state_dir: Path) -> None:
    reply = app.command("deploy v2.0.0 to staging")
    assert "needs no approval in staging" in reply.seen()
    posted(app, "✅ Deployment of v2.0.0 to staging completed")
    assert not [m for m in app.emulator.in_channel(DEPLOYS) if "Approval needed" in m.seen()]
    assert deployed_log(state_dir)[0].split()[:3] == ["api", "staging", "v2.0.0"]


def test_the_deploy_program_does_not_see_opsbots_own_secrets(app: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-secret")
    app.command("deploy v2.0.0 to staging")
    done = posted(app, "✅ Deployment of v2.0.0 to staging completed")
    history = app.reads.deploys.history("api", "staging", 1)[0]  # type: ignore[union-attr]
    assert "slack token visible: False" in (history.output_tail or "")
    assert done is not None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("deploy v1.2.3 nope to production", "Unknown service `nope`"),
        ("deploy v1.2.3 api to prod", "Did you mean `production`?"),
        ("deploy v1.2.3 worker to production", "`worker` does not run in `production`"),
        ("deploy 1.2 api to production", "`1.2` is not a valid version of `api`: it must be a semver tag like v1.2.3"),
        ("deploy v1.2.3 web to production", "is not a valid version of `web`: it must be a git SHA"),
        ("deploy v1.2.3 api", "Say where to deploy `api`: `to staging` or `to production`"),
        ("deploy v1.2.3 --hotfix to production", "A hotfix needs a reason"),
    ],
)
def test_bad_deploy_requests_get_a_specific_answer_and_change_nothing(app: Bot, text: str, expected: str) -> None:
    reply = app.command(text)
    assert expected in reply.seen() and reply.ephemeral_to == "U0DEV"
    assert app.services.adapters.locks.held() == []
    assert app.reads.deploys.history(None, None, 5) == []  # type: ignore[union-attr]


def test_someone_without_the_deployer_role_is_refused(app: Bot) -> None:
    reply = app.command("deploy v1.2.3 to staging", user="U0VIEWER")
    assert "`deploy` needs the *deployer* role" in reply.seen()
    assert ("U0VIEWER", "command.deploy", "denied") in app.audit_actions()
    assert app.services.adapters.locks.held() == []


def test_dry_run_says_who_approves_which_lock_and_what_would_run_and_changes_nothing(app: Bot, state_dir: Path) -> None:
    reply = app.command("deploy v1.2.3 to production --dry-run").seen()
    assert "Dry run: Deploy v1.2.3 of api to production" in reply
    assert "2 distinct approvers" in reply and "@S0SRE" in reply and "@U0APPROVER3" in reply
    assert "deploy/api/production: free" in reply
    assert f"fake_deploy.py {state_dir} api production v1.2.3" in reply
    assert "Nothing was changed" in reply
    assert app.services.adapters.locks.held() == [] and app.emulator.in_channel(DEPLOYS) == []
    assert ("U0DEV", "command.deploy", "dry_run") in app.audit_actions()


def test_a_non_approver_click_is_refused_and_the_request_stays_open(app: Bot) -> None:
    app.command("deploy v1.2.3 to production")
    request = approval_for(app, "Deploy v1.2.3 of api to production")
    replies = app.click(request, "Approve", "U0DEV2")
    assert "needs the *approver* role" in replies[-1]["text"]
    assert "0 of 2" in app.emulator.find(request.ts).seen()


def test_twenty_concurrent_approve_clicks_deploy_exactly_once(
    emulator: SlackEmulator, db_url: str, redis_client: redis.Redis, redis_prefix: str, config: OpsConfig, state_dir: Path
) -> None:
    app = Bot(emulator=emulator, db_url=db_url, redis_client=redis_client, prefix=redis_prefix, config=config)
    app.command("deploy v1.2.3 to production")
    request = copy.deepcopy(approval_for(app, "Deploy v1.2.3 of api to production"))
    voters = ["U0APPROVER1", "U0APPROVER2", "U0APPROVER3", "U0ADMIN"] * 5
    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(lambda user: app.click(request, "Approve", user), voters))
    posted(app, "✅ Deployment of v1.2.3 to production completed")
    app.services.local_worker.wait_idle()  # type: ignore[attr-defined]
    assert len(deployed_log(state_dir)) == 1
    assert len([m for m in app.emulator.in_channel(DEPLOYS) if "Starting deployment" in m.seen()]) == 1


def test_a_second_deploy_of_the_same_target_is_told_who_holds_the_lock_and_may_wait(app: Bot) -> None:
    app.command('deploy v1.2.3 to production --reason "release"', user="U0DEV")
    refused = app.command("deploy v1.2.4 to production", user="U0DEV2")
    seen = refused.seen()
    assert "Your deploy of v1.2.4 was refused" in seen and "held by @U0DEV" in seen and "deploy of v1.2.3" in seen
    assert "since 1" in seen or "since 0" in seen or "since 2" in seen
    assert app.click(refused, "Notify me when free", "U0DEV2")[-1]["text"].endswith("You are number 1 in line.")
    assert app.click(refused, "Notify me when free", "U0APPROVER1")[-1]["text"].endswith("You are number 2 in line.")
    assert app.click(refused, "Notify me when free", "U0DEV2")[-1]["text"].endswith("You are number 1 in line.")
    deploy_id = app.reads.deploys.history("api", "production", 1)[0].id  # type: ignore[union-attr]
    app.command(f"cancel {deploy_id}", user="U0DEV")
    dms = app.emulator.wait_for(
        lambda: (lambda d: d if len(d) == 2 else None)(
            [m for m in app.emulator.visible() if m.channel in {"D0DEV2", "D0APPROVER1"}]
        )
    )
    assert [m.channel for m in sorted(dms, key=lambda m: m.seq)] == [
        "D0DEV2",
        "D0APPROVER1",
    ]  # in the order they asked, once each
    assert f"*deploy/api/production* is free: deploy of v1.2.3 ({deploy_id}) was cancelled" in dms[0].seen()
    assert ("U0DEV2", "deploy.lock_refused", "conflict") in app.audit_actions()


def test_two_concurrent_deploys_of_the_same_target_one_wins(app: Bot) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        replies = list(pool.map(lambda user: app.command("deploy v1.2.3 to production", user=user), ["U0DEV", "U0DEV2"]))
    texts = [r.seen() for r in replies]
    assert sum("waiting for 2 approvals" in t for t in texts) == 1
    loser = next(t for t in texts if "was refused" in t)
    assert "held by @U0DEV" in loser or "held by @U0DEV2" in loser
    assert len(app.services.adapters.locks.held()) == 1


class TestWebhookProvider:
    @pytest.fixture
    def receiver(self, state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookReceiver]:
        monkeypatch.setenv(WEBHOOK_SECRET_ENV, "hook-secret")
        server = WebhookReceiver("hook-secret", state_dir)
        server.start()
        yield server
        server.stop()

    @pytest.fixture
    def config(self, state_dir: Path, services_double: ServiceDouble, receiver: WebhookReceiver) -> OpsConfig:
        return deploy_config(state_dir, services_double.base_url, webhook_url=receiver.base_url + "/deploy")

    def test_a_webhook_deploy_is_signed_verified_and_announced(self, app: Bot, receiver: WebhookReceiver) -> None:
        app.command("deploy 1a2b3c4 web to staging")
        done = posted(app, "✅ Deployment of 1a2b3c4 to staging completed")
        assert "reporting 1a2b3c4" in done.seen() and "webhook answered HTTP 200" in done.seen()
        assert receiver.bad_signatures == 0 and [d["version"] for d in receiver.done.values()] == ["1a2b3c4"]

    def test_a_webhook_answering_500_is_retried_then_the_deploy_fails(self, app: Bot, receiver: WebhookReceiver) -> None:
        receiver.script = [("before", 500)] * 3
        app.command("deploy 1a2b3c4 web to staging")
        failed = posted(app, "❌ Deployment of 1a2b3c4 to staging failed")
        assert "webhook answered HTTP 500 after 3 attempts" in failed.seen()
        assert len(receiver.attempts) == 3 and receiver.done == {}
        assert "No locks are held" in app.command("locks").seen()
