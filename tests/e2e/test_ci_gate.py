"""The CI gate (`services.api.ci`) through signed Slack requests, against a local GitHub (tests/github_double.py):
green CI goes ahead as usual; a failed check refuses the deploy naming it with its link, nothing locked or posted;
pending CI opens the request, which follows CI as checks finish and deploys only once approved and green; CI turning
red or staying pending past ci_timeout_minutes refuses it and releases the lock; GitHub refusing at request time is
one clear message; the dry run shows CI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from bot.config import OpsConfig, parse_config, services
from bot.console.slack_emulator import Posted, SlackEmulator
from tests.deploy_kit import (  # noqa: F401 - fixtures
    RecordedEvents,
    ServiceDouble,
    deploy_config_data,
    deployed_log,
    services_double,
    state_dir,
)
from tests.github_double import GithubDouble
from tests.support import Bot, eventually

DEPLOYS = "C0DEPLOYS"
TOKEN = "ghp_c1GateT0ken"
TOKEN_ENV = "OPSBOT_TEST_CI_GATE_TOKEN"
REF = "v1.2.3"


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests poll a local GitHub double every 0.3 s; the 5 s floor of `poll_seconds` guards GitHub's rate limit
    (5,000 requests an hour), not a double on 127.0.0.1, so it is lowered here (read when the config is parsed)."""
    monkeypatch.setattr(services, "MIN_POLL_SECONDS", 0.1)


@pytest.fixture
def github() -> Iterator[GithubDouble]:
    server = GithubDouble(token=TOKEN, refs=("main",)).start()
    yield server
    server.stop()


def make_bot(emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, prefix: str, config: OpsConfig) -> Bot:
    return Bot(emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=prefix, config=config, events=RecordedEvents())


def ci_config(state_dir: Path, services: ServiceDouble, github: GithubDouble, **ci: Any) -> OpsConfig:
    data = deploy_config_data(state_dir, services.base_url)
    data["services"]["api"]["ci"] = {
        "provider": "github",
        "repo": "example/api",
        "token_env": TOKEN_ENV,
        "api_url": github.base_url,
        "ci_timeout_minutes": 0.5,
        "poll_seconds": 0.3,
        "environments": ["production"],
        **ci,
    }
    return parse_config(data, "test")


@pytest.fixture
def app(
    emulator: SlackEmulator,
    pg_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    state_dir: Path,
    services_double: ServiceDouble,
    github: GithubDouble,
    monkeypatch: pytest.MonkeyPatch,
) -> Bot:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return make_bot(emulator, pg_url, redis_client, redis_prefix, ci_config(state_dir, services_double, github))


def posted(app: Bot, text: str, channel: str = DEPLOYS, timeout: float = 10.0) -> Posted:
    return app.emulator.wait_for(
        lambda: next((m for m in reversed(app.emulator.in_channel(channel)) if text in m.seen()), None), timeout
    )


def request_shows(app: Bot, request: Posted, text: str, timeout: float = 10.0) -> str:
    """The approval request's message once it shows ``text`` (it is edited as CI moves)."""

    def current() -> str | None:
        found = app.emulator.find(request.ts)
        return found.seen() if found is not None and text in found.seen() else None

    return str(app.emulator.wait_for(current, timeout))


def audit_rows(app: Bot, action: str) -> list[dict[str, Any]]:
    rows = [dict(r) for r in app.services.adapters.audit.rows() if r["action"] == action]  # type: ignore[attr-defined]
    for row in rows:
        row["params"] = json.loads(row["params"]) if isinstance(row["params"], str) else row["params"]
    return rows


def nothing_happened(app: Bot) -> None:
    assert not [m for m in app.emulator.in_channel(DEPLOYS) if "Approval needed" in m.seen()]
    assert app.reads.deploys.history(None, None, 10) == []  # type: ignore[union-attr]
    assert "No locks are held" in app.command("locks", user="U0VIEWER").seen()


def test_green_ci_goes_ahead_and_the_request_shows_it(app: Bot, github: GithubDouble, state_dir: Path) -> None:
    for name in ("build", "test", "lint", "e2e"):
        github.add_check(REF, name)
    github.set_status(REF, "ci/jenkins", "success")
    reply = app.command(f'deploy {REF} api to production --reason "release 42"').seen()
    assert "waiting for 2 approvals" in reply and "CI (example/api): ✅ 5 of 5 checks passed" in reply
    request = posted(app, "Approval needed: Deploy v1.2.3 of api to production")
    assert "*CI*\n✅ 5 of 5 checks passed" in request.seen()
    app.click(request, "Approve", "U0APPROVER1")
    app.click(request, "Approve", "U0APPROVER2")
    posted(app, "✅ Deployment of v1.2.3 to production completed")
    assert [line.split()[:3] for line in deployed_log(state_dir)] == [["api", "production", REF]]


def test_a_failed_check_refuses_the_deploy_naming_it_with_its_link_and_nothing_happens(app: Bot, github: GithubDouble) -> None:
    github.add_check(REF, "build")
    failed = github.add_check(REF, "unit tests", conclusion="failure")
    reply = app.command(f'deploy {REF} api to production --reason "release 42"')
    assert reply.ephemeral_to == "U0DEV"
    link = f"https://github.com/example/api/runs/{failed.id}"
    assert "api deploys only versions whose CI is green" in reply.seen()
    assert "check `unit tests` failed (failure)" in reply.seen() and link in str(reply.blocks)
    assert str(reply.blocks).count(link) == 1 and reply.seen().count("check `unit tests` failed") == 1  # said once
    assert "example/api at `v1.2.3`: 1 of 2 checks passed. Fix the check" in reply.seen()
    nothing_happened(app)
    (refusal,) = audit_rows(app, "deploy.refused")
    assert refusal["outcome"] == "ci_failed" and "check `unit tests` failed (failure)" in refusal["error"]
    assert ("U0DEV", "command.deploy", "ci_failed") in app.audit_actions()

    hotfix = app.command(f'deploy {REF} api to production --hotfix --reason "checkout down"').seen()
    assert "`--hotfix` does not pass a failed CI" in hotfix
    nothing_happened(app)


def test_pending_ci_waits_follows_the_checks_and_deploys_once_approved_and_green(
    app: Bot, github: GithubDouble, state_dir: Path
) -> None:
    github.add_check(REF, "build")
    github.add_check(REF, "test", status="in_progress")
    github.add_check(REF, "e2e", status="queued")
    reply = app.command(f'deploy {REF} api to production --reason "release 42"').seen()
    assert "⏳ waiting for CI (1 of 3 checks done). It starts only once CI is green (and approved)" in reply
    request = posted(app, "Approval needed: Deploy v1.2.3 of api to production")
    assert "*CI*\n⏳ waiting for CI (1 of 3 checks done)" in request.seen()

    github.set_check(REF, "test", conclusion="success")
    request_shows(app, request, "⏳ waiting for CI (2 of 3 checks done)")

    app.click(request, "Approve", "U0APPROVER1")
    (receipt,) = app.click(request, "Approve", "U0APPROVER2")
    assert "The deploy starts once CI is green: waiting for CI (2 of 3 checks done)" in json.dumps(receipt)
    assert "it is approved." in json.dumps(receipt)
    assert deployed_log(state_dir) == []
    assert app.reads.deploys.history(None, None, 1)[0].state.value == "approved"  # type: ignore[union-attr]

    github.set_check(REF, "e2e", conclusion="success")
    posted(app, "✅ Deployment of v1.2.3 to production completed")
    assert "*CI*\n✅ 3 of 3 checks passed" in request_shows(app, request, "3 of 3 checks passed")
    assert [line.split()[:3] for line in deployed_log(state_dir)] == [["api", "production", REF]]
    (passed,) = audit_rows(app, "deploy.ci_passed")
    assert passed["params"]["queued"] is True


def test_ci_turning_red_while_waiting_refuses_the_request_and_releases_the_lock(app: Bot, github: GithubDouble) -> None:
    github.add_check(REF, "build")
    github.add_check(REF, "test", status="in_progress")
    app.command(f'deploy {REF} api to production --reason "release 42"')
    request = posted(app, "Approval needed: Deploy v1.2.3 of api to production")
    assert "deploy/api/production" in app.command("locks", user="U0VIEWER").seen()

    github.set_check(REF, "test", conclusion="cancelled")
    notice = posted(app, "did not start: the CI gate refused it: check `test` failed (cancelled)")
    assert "Deployment of v1.2.3 to production" in notice.seen()
    seen = request_shows(app, request, "Rejected")
    assert (
        "❌ check `test` failed (cancelled)" in seen
        and "refused" in seen
        and "Approve"
        not in str(
            app.emulator.find(request.ts).blocks  # type: ignore[union-attr]
        )
    )
    told = posted(app, "was refused by the CI gate", channel="D0DEV")  # the requester's DM
    assert "check `test` failed (cancelled)" in told.seen()
    eventually(lambda: "No locks are held" in app.command("locks", user="U0VIEWER").seen())
    (deploy,) = app.reads.deploys.history(None, None, 10)  # type: ignore[union-attr]
    assert deploy.state.value == "rejected" and deploy.ci_state == "failed"
    (refusal,) = audit_rows(app, "deploy.refused")
    assert refusal["outcome"] == "ci_failed"


def test_ci_still_pending_after_the_timeout_refuses_the_request(
    emulator: SlackEmulator,
    pg_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    state_dir: Path,
    services_double: ServiceDouble,
    github: GithubDouble,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    config = ci_config(state_dir, services_double, github, ci_timeout_minutes=0.03)  # 1.8 s
    app = make_bot(emulator, pg_url, redis_client, redis_prefix, config)
    github.add_check(REF, "build", status="in_progress")
    app.command(f'deploy {REF} api to production --reason "release 42"')
    request = posted(app, "Approval needed: Deploy v1.2.3 of api to production")
    posted(app, "did not start: the CI gate refused it: CI was still pending after 0.03 minutes (ci_timeout_minutes)")
    seen = request_shows(app, request, "still pending after")
    assert "⌛ still pending after 0.03 minutes · refused" in seen and seen.count("refused") == 1
    eventually(lambda: "No locks are held" in app.command("locks", user="U0VIEWER").seen())
    (refusal,) = audit_rows(app, "deploy.refused")
    assert refusal["outcome"] == "ci_timeout"


def test_github_unreadable_during_a_poll_is_said_once_without_editing_the_request_each_poll(
    app: Bot, github: GithubDouble
) -> None:
    github.add_check(REF, "build", status="in_progress")
    app.command(f'deploy {REF} api to production --reason "release 42"')
    request = posted(app, "Approval needed: Deploy v1.2.3 of api to production")
    polls = len([r for r in github.requests if r.path.endswith("/status")])
    github.secondary(1000, retry_after=1, status=429)
    seen = request_shows(app, request, "GitHub could not be read since")
    assert "⏳ waiting for CI (0 of 1 check done); GitHub could not be read since " in seen
    assert "UTC (GitHub is rate limiting opsbot (429)); polling again every 0.3 s until " in seen
    assert "try again" not in seen
    edits = len([c for c in app.emulator.calls_to("chat.update") if c.args.get("ts") == request.ts])
    eventually(lambda: len([r for r in github.requests if r.path.endswith("/status")]) >= polls + 5, timeout=10)
    assert len([c for c in app.emulator.calls_to("chat.update") if c.args.get("ts") == request.ts]) == edits
    github.calm()  # GitHub answers again
    github.set_check(REF, "build", conclusion="success")
    request_shows(app, request, "✅ 1 of 1 check passed")


def test_a_bad_token_at_request_time_says_to_check_it_and_nothing_happens(app: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, "ghp_revoked")
    reply = app.command(f'deploy {REF} api to production --reason "release 42"')
    assert reply.ephemeral_to == "U0DEV"
    assert "`api`: the CI gate could not read v1.2.3 in example/api" in reply.seen()
    assert f"401 Bad credentials): check {TOKEN_ENV}" in reply.seen() and "ghp_revoked" not in reply.seen()
    nothing_happened(app)
    (refusal,) = audit_rows(app, "deploy.refused")
    assert refusal["outcome"] == "ci_unauthorized"


def test_a_rate_limit_at_request_time_says_when_to_try_again(app: Bot, github: GithubDouble) -> None:
    github.add_check(REF, "build")
    github.secondary(1, retry_after=42, status=429)
    reply = app.command(f'deploy {REF} api to production --reason "release 42"').seen()
    assert "GitHub is rate limiting opsbot (429): try again in 42 s" in reply
    nothing_happened(app)
    assert [r["outcome"] for r in audit_rows(app, "deploy.refused")] == ["ci_rate_limited"]


def test_an_unknown_ref_is_named(app: Bot) -> None:
    reply = app.command('deploy v9.9.9 api to production --reason "release 42"').seen()
    assert "v9.9.9 is not a ref in example/api" in reply
    nothing_happened(app)


def test_the_dry_run_shows_ci(app: Bot, github: GithubDouble) -> None:
    github.add_check(REF, "build")
    github.add_check(REF, "test", status="in_progress")
    pending = app.command(f"deploy {REF} api to production --dry-run").seen()
    assert "*CI* (example/api at `v1.2.3`)\n⏳ waiting for CI (1 of 2 checks done): the request would wait for CI" in pending
    github.set_check(REF, "test", conclusion="failure")
    failed = app.command(f"deploy {REF} api to production --dry-run").seen()
    assert "check `test` failed (failure)" in failed and "so it would be refused" in failed
    assert "*CI*" not in app.command(f"deploy {REF} api to staging --dry-run").seen()  # the gate is for production
    nothing_happened(app)


def test_the_gate_applies_only_to_its_environments(app: Bot, github: GithubDouble) -> None:
    github.add_check("v1.2.4", "build", conclusion="failure")
    app.command("deploy v1.2.4 api to staging")
    posted(app, "✅ Deployment of v1.2.4 to staging completed")
    assert not [r for r in github.requests if "/commits/" in r.path]


def waiting_bot(
    emulator: SlackEmulator,
    pg_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    state_dir: Path,
    services_double: ServiceDouble,
    github: GithubDouble,
    monkeypatch: pytest.MonkeyPatch,
    **ci: Any,
) -> Bot:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return make_bot(emulator, pg_url, redis_client, redis_prefix, ci_config(state_dir, services_double, github, **ci))


def scheduled_polls(app: Bot) -> list[dict[str, Any]]:
    return [payload for _, name, payload in app.services.adapters.jobs.scheduled() if name == "deploys.ci_poll"]  # type: ignore[attr-defined]


def test_the_same_poll_delivered_twice_reads_ci_once_and_queues_one_run(
    emulator: SlackEmulator,
    db_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    state_dir: Path,
    services_double: ServiceDouble,
    github: GithubDouble,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Polls ten minutes apart: only the deliveries this test makes run. On SQLite and PostgreSQL (a poll carries the
    # reading time it follows, which must read back from either exactly as written).
    app = waiting_bot(
        emulator, db_url, redis_client, redis_prefix, state_dir, services_double, github, monkeypatch, poll_seconds=600
    )
    github.add_check(REF, "build", status="in_progress")
    app.command(f'deploy {REF} api to production --reason "release 42"')
    request = posted(app, "Approval needed: Deploy v1.2.3 of api to production")
    app.click(request, "Approve", "U0APPROVER1")
    app.click(request, "Approve", "U0APPROVER2")
    (poll,) = scheduled_polls(app)
    github.set_check(REF, "build", conclusion="success")
    reads = len([r for r in github.requests if r.path.endswith("/check-runs")])
    app.services.dispatcher.run_job("deploys.ci_poll", poll)
    app.services.dispatcher.run_job("deploys.ci_poll", poll)  # delivered again (a retried RQ job)
    posted(app, "✅ Deployment of v1.2.3 to production completed")
    assert len([r for r in github.requests if r.path.endswith("/check-runs")]) == reads + 1
    assert len(deployed_log(state_dir)) == 1 and len(audit_rows(app, "deploy.ci_passed")) == 1


def test_a_request_whose_poll_was_lost_gets_one_from_the_reconciler(
    emulator: SlackEmulator,
    pg_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    state_dir: Path,
    services_double: ServiceDouble,
    github: GithubDouble,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = waiting_bot(
        emulator, pg_url, redis_client, redis_prefix, state_dir, services_double, github, monkeypatch, poll_seconds=1.5
    )  # a poll 1.5 s after the request: the test cancels it first, even on a loaded machine
    github.add_check(REF, "build", status="in_progress")
    app.command(f'deploy {REF} api to production --reason "release 42"')
    request = posted(app, "Approval needed: Deploy v1.2.3 of api to production")
    (deploy,) = app.reads.deploys.history(None, None, 1)  # type: ignore[union-attr]
    app.services.adapters.jobs.cancel(f"deploy:{deploy.id}:ci-poll")  # the worker died with its scheduled poll
    assert scheduled_polls(app) == []
    github.set_check(REF, "build", conclusion="success")
    assert app.services.dispatcher.reconcile() == []  # not quiet long enough yet (3 polls + 2 s)
    repaired = eventually(lambda: app.services.dispatcher.reconcile(), timeout=15)
    assert repaired == [f"{deploy.id}: waiting for CI with no poll since {deploy.ci_checked_at:%H:%M:%S}; polling again"]
    request_shows(app, request, "✅ 1 of 1 check passed")
    app.click(request, "Approve", "U0APPROVER1")
    app.click(request, "Approve", "U0APPROVER2")
    posted(app, "✅ Deployment of v1.2.3 to production completed")


def test_where_no_approval_is_needed_the_deploy_is_queued_and_starts_once_ci_is_green(
    emulator: SlackEmulator,
    pg_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    state_dir: Path,
    services_double: ServiceDouble,
    github: GithubDouble,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = waiting_bot(
        emulator, pg_url, redis_client, redis_prefix, state_dir, services_double, github, monkeypatch, environments=None
    )
    github.add_check(REF, "build", status="in_progress")
    reply = app.command(f"deploy {REF} api to staging").seen()
    assert "needs no approval in staging" in reply and "It starts only once CI is green" in reply
    assert deployed_log(state_dir) == []
    github.set_check(REF, "build", conclusion="success")
    posted(app, "✅ Deployment of v1.2.3 to staging completed")
    assert [line.split()[:3] for line in deployed_log(state_dir)] == [["api", "staging", REF]]


def test_a_rollback_does_not_wait_on_ci(
    emulator: SlackEmulator,
    pg_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    state_dir: Path,
    services_double: ServiceDouble,
    github: GithubDouble,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = waiting_bot(
        emulator, pg_url, redis_client, redis_prefix, state_dir, services_double, github, monkeypatch, environments=None
    )
    for version in ("v1.2.2", REF):
        github.add_check(version, "build")
        app.command(f"deploy {version} api to staging")
        posted(app, f"✅ Deployment of {version} to staging completed")
    github.set_check("v1.2.2", "build", conclusion="failure")  # v1.2.2's CI went red since it ran
    reads = len(github.requests)
    app.command('rollback api staging --reason "error rate x3"')
    posted(app, "Rolled back api to v1.2.2 in staging")
    assert len(github.requests) == reads


def checklist_bot(
    emulator: SlackEmulator,
    pg_url: str,
    redis_client: redis.Redis,
    prefix: str,
    state_dir: Path,
    services: ServiceDouble,
    github: GithubDouble,
) -> Bot:
    """Production's checklist has an item CI ticks (``satisfied_by: ci``) and one people tick."""
    config = ci_config(state_dir, services, github)
    data = json.loads(config.model_dump_json())
    data["environments"]["production"]["checklist"] = [
        {"item": "All tests pass (CI green)", "satisfied_by": "ci"},
        "Backup created",
    ]
    return make_bot(emulator, pg_url, redis_client, prefix, parse_config(data, "test"))


def boxes(message: Posted) -> list[str]:
    """The checklist items still offered as checkboxes (those opsbot ticked have none)."""
    return [
        option["text"]["text"]
        for block in message.blocks
        for element in block.get("elements") or []
        if element.get("type") == "checkboxes"
        for option in element.get("options", [])
    ]


def test_ci_turning_green_while_waiting_ticks_the_checklist_item_bound_to_ci_for_every_approver(
    emulator: SlackEmulator,
    pg_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    state_dir: Path,
    services_double: ServiceDouble,
    github: GithubDouble,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    app = checklist_bot(emulator, pg_url, redis_client, redis_prefix, state_dir, services_double, github)
    github.add_check(REF, "build")
    github.add_check(REF, "test", status="in_progress")
    github.add_check(REF, "e2e", status="queued")
    app.command(f'deploy {REF} api to production --reason "release 42"')
    request = posted(app, "Approval needed: Deploy v1.2.3 of api to production")
    assert boxes(request) == ["All tests pass (CI green)", "Backup created"]
    (refused,) = app.tick(request, "All tests pass (CI green)", "U0APPROVER1")  # CI's item: nobody ticks it by hand
    assert "Nobody ticks *All tests pass (CI green)* by hand: opsbot ticks it for everyone once CI is green." in refused["text"]
    app.tick(request, "Backup created", "U0APPROVER1")
    (early,) = app.click(app.emulator.find(request.ts), "Approve", "U0APPROVER1")  # type: ignore[arg-type]
    assert "All tests pass (CI green) is not ticked; opsbot ticks All tests pass (CI green) once CI is green" in early["text"]

    github.set_check(REF, "test", conclusion="success")  # CI moves on: the request's CI line is edited …
    seen = request_shows(app, request, "2 of 3 checks done")
    assert "Checklist: @U0APPROVER1 1 of 2" in seen  # … and the ticks stay on it (an edit once dropped them)

    github.set_check(REF, "e2e", conclusion="success")
    seen = request_shows(app, request, "ticked by opsbot")
    assert "✅ All tests pass (CI green) — ticked by opsbot: CI green on example/api at v1.2.3: ✅ 3 of 3 checks passed" in seen
    assert "Checklist: @U0APPROVER1 2 of 2 ✅" in seen
    current = app.emulator.find(request.ts)
    assert current is not None and boxes(current) == ["Backup created"]
    (satisfied,) = audit_rows(app, "approval.checklist_satisfied")
    assert satisfied["params"]["gate"] == "ci" and satisfied["params"]["items"] == ["All tests pass (CI green)"]

    app.click(app.emulator.find(request.ts), "Approve", "U0APPROVER1")  # type: ignore[arg-type]
    app.tick(app.emulator.find(request.ts), "Backup created", "U0APPROVER2")  # type: ignore[arg-type]  # only CI's is done
    app.click(app.emulator.find(request.ts), "Approve", "U0APPROVER2")  # type: ignore[arg-type]
    posted(app, "✅ Deployment of v1.2.3 to production completed")


def test_ci_green_at_request_time_ticks_the_checklist_item_at_once(
    emulator: SlackEmulator,
    pg_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    state_dir: Path,
    services_double: ServiceDouble,
    github: GithubDouble,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    app = checklist_bot(emulator, pg_url, redis_client, redis_prefix, state_dir, services_double, github)
    github.add_check(REF, "build")
    app.command(f'deploy {REF} api to production --reason "release 42"')
    request = posted(app, "Approval needed: Deploy v1.2.3 of api to production")
    assert (
        "✅ All tests pass (CI green) — ticked by opsbot: CI green on example/api at v1.2.3: ✅ 1 of 1 check passed"
        in request.seen()
    )
    assert boxes(request) == ["Backup created"]
    (refusal,) = app.click(request, "Approve", "U0APPROVER1")
    assert "Tick every checklist item before approving: Backup created is not ticked." in refusal["text"]


def test_the_dry_run_says_opsbot_would_tick_the_ci_item_once_ci_is_green(
    emulator: SlackEmulator,
    pg_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    state_dir: Path,
    services_double: ServiceDouble,
    github: GithubDouble,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    app = checklist_bot(emulator, pg_url, redis_client, redis_prefix, state_dir, services_double, github)
    github.add_check(REF, "build", status="in_progress")
    seen = app.command(f'deploy {REF} api to production --reason "release 42" --dry-run').seen()
    assert "⏳ All tests pass (CI green) — opsbot would tick it once CI is green" in seen
    assert "☐ Backup created" in seen
