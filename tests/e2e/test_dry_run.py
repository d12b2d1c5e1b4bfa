"""`--dry-run` on every mutating command that means something: what would happen, and nothing else.

Each test takes a snapshot of everything opsbot could change — every table but the audit log's, every Redis key of
the test's prefix (type and value), and every Slack Web API call that is not a read — runs the command with
`--dry-run` through Bolt's real dispatch, and checks the snapshot again: equal, and exactly one new audit row, of
outcome ``dry_run``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from bot.adapters.sql.engine import metadata
from bot.config import OpsConfig
from bot.console.slack_emulator import SlackEmulator
from tests.deploy_kit import ServiceDouble, deploy_config, services_double, state_dir  # noqa: F401 - fixtures
from tests.flagkit import create_flag_table, flag_row
from tests.support import Bot, make_config

READS = (".list", ".info", ".members", ".history", ".replies")
Snapshot = tuple[dict[str, list[str]], dict[bytes, Any], list[str]]


def snapshot(bot: Bot, client: redis.Redis, prefix: str) -> Snapshot:
    """(rows of every table but the audit log's, Redis keys with their values, Slack calls that change something)."""
    with bot.services.engine.connect() as conn:
        rows = {
            table.name: sorted(repr(tuple(row)) for row in conn.execute(sa.select(table)))
            for table in metadata.sorted_tables
            if not table.name.startswith("audit")
        }
    keys = {key: client.dump(key) for key in client.scan_iter(match=f"{prefix}*")}
    calls = [
        c.method for c in bot.emulator.calls if c.method not in ("response_url", "auth.test") and not c.method.endswith(READS)
    ]
    return rows, keys, calls


@pytest.fixture
def dry(emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str) -> Callable[..., Bot]:
    def make(config: OpsConfig | None = None) -> Bot:
        return Bot(
            emulator=emulator,
            db_url=pg_url,
            redis_client=redis_client,
            prefix=redis_prefix,
            config=config or make_config(),
        )

    return make


def run_dry(bot: Bot, client: redis.Redis, prefix: str, text: str, user: str = "U0DEV") -> str:
    """Run ``text`` (which has --dry-run) as ``user``; assert it changed nothing but one ``dry_run`` audit row."""
    before, audit_before = snapshot(bot, client, prefix), len(bot.audit_actions())
    reply = bot.command(text, user=user).seen()
    after = snapshot(bot, client, prefix)
    assert after[0] == before[0], "a table changed"
    assert after[1] == before[1], "a Redis key changed"
    assert after[2] == before[2], f"Slack was asked to change something: {after[2][len(before[2]) :]}"
    new_rows = bot.audit_actions()[audit_before:]
    assert [outcome for _, _, outcome in new_rows] == ["dry_run"], new_rows
    assert "Nothing was changed" in reply
    return reply


@pytest.fixture
def deploying(dry: Callable[..., Bot], state_dir: Path, services_double: ServiceDouble) -> Bot:
    """A bot whose `api` is deployed by the local deploy program."""
    return dry(deploy_config(state_dir, services_double.base_url))


def test_rollback_dry_run_names_the_version_the_approvers_and_the_lock(
    deploying: Bot, redis_client: redis.Redis, redis_prefix: str
) -> None:
    bot = deploying
    reply = run_dry(bot, redis_client, redis_prefix, 'rollback api production to v1.2.2 --reason "500s" --dry-run')
    assert "Dry run: Roll back api to v1.2.2 in production" in reply
    assert "1 distinct approver, never the requester" in reply and "@U0APPROVER3" in reply
    assert "deploy/api/production: free, it would be taken at once" in reply
    assert ("U0DEV", "command.rollback", "dry_run") in bot.audit_actions()


def test_rollback_dry_run_without_history_says_what_the_real_one_would_answer(
    deploying: Bot, redis_client: redis.Redis, redis_prefix: str
) -> None:
    bot = deploying
    reply = run_dry(bot, redis_client, redis_prefix, 'rollback api production --reason "500s" --dry-run')
    assert "It would be refused now" in reply and "Nothing has been deployed to `api` in production" in reply


def test_lock_dry_run_on_a_free_lock_and_on_a_held_one(
    dry: Callable[..., Bot], redis_client: redis.Redis, redis_prefix: str
) -> None:
    bot = dry()
    reply = run_dry(bot, redis_client, redis_prefix, 'lock api production for=2h --reason "migration" --dry-run')
    assert "deploy/api/production is free: it would be held by you for 2h" in reply and "for: migration" in reply

    taken = bot.command('lock api production for=1h --reason "db upgrade"', user="U0DEV2").seen()
    assert "db upgrade" in taken
    reply = run_dry(bot, redis_client, redis_prefix, 'lock api production --reason "mine" --dry-run')
    assert "It would be refused now" in reply and "held by hand: db upgrade" in reply and "@U0DEV2" in reply
    assert [lock.holder for lock in bot.services.adapters.locks.held()] == ["U0DEV2"]


def test_unlock_dry_run_names_the_holder_who_would_be_told(
    dry: Callable[..., Bot], redis_client: redis.Redis, redis_prefix: str
) -> None:
    bot = dry()
    bot.command('lock api staging for=1h --reason "load test"', user="U0DEV2")
    reply = run_dry(bot, redis_client, redis_prefix, 'unlock api staging --reason "stuck" --dry-run', user="U0ADMIN")
    assert "Dry run: unlock api in staging" in reply
    assert "they would get a direct message with your reason: @U0DEV2" in reply
    assert len(bot.services.adapters.locks.held()) == 1

    reply = run_dry(bot, redis_client, redis_prefix, 'unlock web staging --reason "x" --dry-run', user="U0ADMIN")
    assert "It would be refused now" in reply and "No lock is held on `web` in `staging`" in reply


def test_a_dry_run_still_needs_the_role_of_the_real_command(dry: Callable[..., Bot]) -> None:
    bot = dry()
    reply = bot.command('unlock api staging --reason "x" --dry-run', user="U0DEV").seen()
    assert "needs the *admin* role" in reply
    assert ("U0DEV", "command.unlock", "denied") in bot.audit_actions()


def test_flag_dry_runs_show_the_state_before_and_after_and_touch_neither_provider_nor_history(
    dry: Callable[..., Bot], redis_client: redis.Redis, redis_prefix: str, app_db_url: str, tmp_path: Path
) -> None:
    create_flag_table(app_db_url, {"checkout.new-flow": (True, False, 30)})
    staging = f"sqlite:///{tmp_path / 'staging.db'}"
    create_flag_table(staging, {"checkout.new-flow": (True, False, 100)})
    provider = {"type": "sql", "databases": {"staging": {"url": staging}, "production": {"url": app_db_url}}}
    flags = {"default_environment": "production", "rollout_max_step": 25, "services": {"checkout.*": "api"}, "provider": provider}
    bot = dry(make_config(flags=flags))

    kill = run_dry(bot, redis_client, redis_prefix, 'flag kill checkout.new-flow --reason "500s" --dry-run')
    assert "*Now*\non · 30% in sql" in kill
    assert "*After*\nKILLED (underneath: on · 30%), at once (no approval needed)" in kill
    assert "loudly in #C0ALERTS, with an Undo button" in kill and "told to the open incidents of api" in kill

    rollout = run_dry(bot, redis_client, redis_prefix, "flag rollout checkout.new-flow 90 --dry-run")
    assert "*After approval*\non · 90%" in rollout and "2 distinct approvers, never you" in rollout
    assert "@U0APPROVER3" in rollout and "posted in #C0DEPLOYS with Approve / Reject" in rollout

    same = run_dry(bot, redis_client, redis_prefix, "flag on checkout.new-flow staging --dry-run")
    assert "*Change*\nnone: it is already on" in same

    unknown = run_dry(bot, redis_client, redis_prefix, 'flag kill checkout.old-flow --reason "x" --dry-run')
    assert "It would be refused now" in unknown and "checkout.old-flow" in unknown

    assert flag_row(app_db_url, "checkout.new-flow") == (True, False, 30)


def test_freeze_and_unfreeze_dry_runs(dry: Callable[..., Bot], redis_client: redis.Redis, redis_prefix: str) -> None:
    bot = dry()
    reply = run_dry(bot, redis_client, redis_prefix, 'freeze production 2h --reason "launch" --dry-run', user="U0APPROVER3")
    assert "Dry run: freeze production" in reply
    assert "deploys of every service in production refused until" in reply and "for: launch" in reply
    assert "Announced*\nin #C0DEPLOYS" in reply
    assert "launch" not in bot.command("freezes").seen()

    reply = run_dry(bot, redis_client, redis_prefix, "unfreeze production --dry-run", user="U0APPROVER3")
    assert "It would be refused now" in reply and "has no freeze set" in reply

    bot.command('freeze api 1h --reason "audit"', user="U0APPROVER3")
    reply = run_dry(bot, redis_client, redis_prefix, "unfreeze api --dry-run", user="U0APPROVER3")
    assert "*Lifted*" in reply and "for: audit, set by @U0APPROVER3" in reply


def test_incident_declare_dry_run_names_the_channel_and_who_would_be_invited(
    dry: Callable[..., Bot], redis_client: redis.Redis, redis_prefix: str
) -> None:
    incidents = {"severities": {"P1": {"update_every_minutes": 60, "responders": ["S0SRE", "U0ADMIN"]}}}
    bot = dry(make_config(incidents=incidents))
    reply = run_dry(bot, redis_client, redis_prefix, "incident declare P1 Checkout 500s --service api --dry-run")
    assert "Dry run: declare P1: Checkout 500s" in reply
    assert "-checkout-500s created" in reply
    assert "*Invited*\nyou and the responders of P1: @U0DEV, @U0APPROVER1, @U0APPROVER2, @U0ADMIN" in reply
    assert "an update asked for every 60 min" in reply and "a summary in #C0INCIDENTS" in reply
    assert bot.emulator.calls_to("conversations.create") == []

    form = bot.command("incident declare --dry-run").seen()
    assert "A dry run needs the severity and the title" in form


def test_help_shows_dry_run_on_the_commands_that_take_it_and_others_refuse_it(dry: Callable[..., Bot]) -> None:
    bot = dry()
    shown = bot.command("help", user="U0ADMIN").seen()
    for usage in ("rollback <service>", "lock <service> <env>", "unlock <service>", "flag kill <name>", "freeze <env|service>"):
        line = next(line for line in shown.splitlines() if usage in line)
        assert "[--dry-run]" in line, line
    assert "`cancel` has no option `--dry-run`" in bot.command("cancel d-123 --dry-run").seen()


def test_the_deploy_dry_run_writes_one_audit_row_and_no_started_row(
    deploying: Bot, redis_client: redis.Redis, redis_prefix: str
) -> None:
    bot = deploying
    reply = run_dry(bot, redis_client, redis_prefix, "deploy v1.2.3 to production --dry-run")
    assert "Dry run: Deploy v1.2.3 of api to production" in reply
    assert ("U0DEV", "command.deploy", "started") not in bot.audit_actions()


def test_a_usage_error_of_a_command_that_takes_dry_run_shows_it_in_the_usage_line(dry: Callable[..., Bot]) -> None:
    app = dry()
    assert (
        'Usage: `/ops lock <service> <env> [for=1h] --reason "…" [--dry-run]`' in app.command("lock api", user="U0ADMIN").seen()
    )
    read = app.command("history api staging extra words here", user="U0ADMIN").seen()  # a read takes no --dry-run
    assert "Usage: `/ops history [service] [env]`" in read and "[--dry-run]" not in read
