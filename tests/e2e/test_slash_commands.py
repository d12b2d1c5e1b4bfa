"""`/ops` through Bolt's real dispatch with signed requests; replies read back from the Slack emulator."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import redis

from bot.config import OpsConfig
from bot.console import payloads
from bot.console.slack_emulator import SlackEmulator
from bot.render import Renderer
from tests.support import Bot


def test_help_lists_only_what_the_caller_may_run(opsbot: Bot) -> None:
    viewer_help = opsbot.command("help", user="U0VIEWER").seen()
    admin_help = opsbot.command("help", user="U0ADMIN").seen()
    assert "/ops locks" in viewer_help and "/ops audit" in viewer_help
    assert "/ops unlock" not in viewer_help and "/ops lock <service>" not in viewer_help
    assert "/ops unlock" in admin_help and "/ops lock <service>" in admin_help


def test_reply_is_ephemeral_to_the_caller(opsbot: Bot) -> None:
    reply = opsbot.command("locks", user="U0VIEWER")
    assert reply.ephemeral_to == "U0VIEWER"
    assert "No locks are held" in reply.seen()


def test_forged_signature_is_refused_and_nothing_is_recorded(opsbot: Bot) -> None:
    url = opsbot.emulator.response_url("C0OPS", "U0ADMIN")
    body = payloads.slash_command("unlock api production --reason x", user_id="U0ADMIN", channel_id="C0OPS", response_url=url)
    forged = payloads.sign("not-the-secret", body)
    assert opsbot.dispatch(body, forged).status == 401
    assert opsbot.audit_actions() == []


def test_missing_signature_is_refused(opsbot: Bot) -> None:
    body = payloads.slash_command(
        "locks", user_id="U0DEV", channel_id="C0OPS", response_url=opsbot.emulator.response_url("C0OPS", "U0DEV")
    )
    assert opsbot.dispatch(body, {"content-type": "application/x-www-form-urlencoded"}).status == 401
    assert opsbot.audit_actions() == []


def test_signature_older_than_five_minutes_is_refused(opsbot: Bot) -> None:
    body = payloads.slash_command(
        "locks", user_id="U0DEV", channel_id="C0OPS", response_url=opsbot.emulator.response_url("C0OPS", "U0DEV")
    )
    stale = payloads.sign(opsbot.secret, body, timestamp=int(time.time()) - 301)
    assert opsbot.dispatch(body, stale).status == 401
    assert opsbot.audit_actions() == []


@pytest.mark.parametrize(
    "text,expected",
    [
        ("frobnicate", "Unknown subcommand `frobnicate`"),
        ("lcoks", "Did you mean `locks`"),
        ('lock api production --reason "unbalanced', "quotes must come in pairs"),
        ('unlock "--reason \x00 x', "quotes must come in pairs"),  # a NUL in the echoed text: PostgreSQL refuses NULs
        ("lock " + "x" * 40_000, "the limit is 4,000"),
        ("lock api production", 'Say why with `--reason "…"`'),
        ("lock api qa --reason x", "Unknown environment `qa`. Known: `staging`, `production`."),
        ("deploy v1.2.3 api to prod", "Unknown environment `prod`. Did you mean `production`? Known: `staging`, `production`."),
        ("lock apii production --reason x", "Did you mean `api`"),
        ("health nope", "Unknown service `nope`. Known: `api`, `web`, `worker`."),
        ("lock worker production --reason x", "`worker` does not run in `production`"),
        ("audit since=yesterday", "`yesterday` is not a duration"),
    ],
)
def test_bad_input_gets_a_short_specific_ephemeral_answer(opsbot: Bot, text: str, expected: str) -> None:
    reply = opsbot.command(text, user="U0DEV")
    assert reply.ephemeral_to == "U0DEV"
    assert expected in reply.seen()
    assert "Traceback" not in reply.seen()


def test_empty_text_answers_with_help(opsbot: Bot) -> None:
    assert "opsbot help" in opsbot.command("", user="U0VIEWER").seen()


def test_unicode_and_emoji_in_a_reason_are_kept_and_a_broadcast_notifies_nobody(opsbot: Bot) -> None:
    reply = opsbot.command('lock api staging --reason "déploiement 🚀 <!here> &lt;b&gt;"', user="U0DEV")
    assert reply.ephemeral_to is None  # announced in the channel
    assert "Reason: déploiement 🚀 @here <b>" in reply.seen()
    assert "<!here>" not in reply.all_text() and "déploiement 🚀 @here &lt;b&gt;" in reply.all_text()


def test_a_user_with_no_role_is_told_which_role_and_it_is_audited(opsbot: Bot) -> None:
    reply = opsbot.command("locks", user="U0NOBODY")
    assert "`locks` needs the *viewer* role" in reply.seen()
    assert ("U0NOBODY", "command.locks", "denied") in opsbot.audit_actions()


def test_lock_locks_then_unlock_by_admin_tells_the_holder(opsbot: Bot) -> None:
    opsbot.command("lock api production for=2h --reason 'schema migration'", user="U0DEV")
    listing = opsbot.command("locks", user="U0VIEWER").seen()
    assert "*deploy/api/production* · held by @U0DEV" in listing and "held by hand: schema migration" in listing
    assert "expires in 1h 59m" in listing or "expires in 2h" in listing
    refused = opsbot.command("lock api production --reason again", user="U0DEV2")
    assert "is held by @U0DEV" in refused.seen()
    broken = opsbot.command("unlock api production --reason 'migration done'", user="U0ADMIN")
    assert "force-released *deploy/api/production*" in broken.seen()
    dm = opsbot.emulator.wait_for(lambda: [m for m in opsbot.emulator.visible() if m.channel == "D0DEV"])
    assert "Reason: migration done" in dm[0].seen()
    assert "No locks are held" in opsbot.command("locks", user="U0VIEWER").seen()


def test_audit_shows_recent_entries_and_pages_through_an_opaque_id(opsbot: Bot) -> None:
    for _ in range(17):
        opsbot.command("locks", user="U0DEV")
    first = opsbot.command("audit by=@U0DEV", user="U0VIEWER")
    assert first.seen().count("command.locks") == 15
    assert next(b["value"] for b in first.buttons()).isascii() and "U0DEV" not in first.buttons()[0]["value"]
    second = opsbot.click(first, "Older entries", "U0VIEWER")
    assert second[-1]["replace_original"] is True
    assert second[-1]["text"].count("command.locks") == 2


def test_a_forged_page_id_is_refused_cleanly(opsbot: Bot) -> None:
    for _ in range(16):
        opsbot.command("locks", user="U0DEV")
    page = opsbot.command("audit", user="U0VIEWER")
    page.blocks[-1]["elements"][0]["value"] = "forged"
    replies = opsbot.click(page, "Older entries", "U0VIEWER")
    assert "That page has expired" in replies[-1]["text"]


def test_slack_rate_limit_is_waited_out_not_lost(opsbot: Bot) -> None:
    opsbot.command("lock api staging --reason x", user="U0DEV")
    opsbot.emulator.fail("chat.postMessage", "ratelimited", status=429, retry_after=1)
    started = time.monotonic()
    opsbot.command("unlock api staging --reason y", user="U0ADMIN")
    dm = opsbot.emulator.wait_for(lambda: [m for m in opsbot.emulator.visible() if m.channel == "D0DEV"])
    assert len(dm) == 1 and time.monotonic() - started >= 1.0
    assert [c.status for c in opsbot.emulator.calls_to("chat.postMessage")] == [429, 200]


def test_user_groups_are_resolved_through_slack(opsbot: Bot) -> None:
    help_text = opsbot.command("help", user="U0APPROVER1").seen()  # approver through the S0SRE group
    assert "Your roles: approver, deployer, viewer" in help_text
    assert len(opsbot.emulator.calls_to("usergroups.users.list")) == 1


def test_a_user_group_slack_will_not_show_is_a_clear_refusal(opsbot: Bot) -> None:
    opsbot.emulator.fail("usergroups.users.list", "missing_scope", needed="usergroups:read")
    reply = opsbot.command("locks", user="U0NOBODY")
    assert (
        "Slack refused to read a user group (`missing_scope`): opsbot's Slack app lacks the `usergroups:read` "
        "permission: add it under OAuth & Permissions (manifest.yml lists every scope) and reinstall the app."
    ) in reply.seen()


def test_a_reply_whose_template_fails_to_render_still_answers_with_a_reference(
    emulator: SlackEmulator,
    pg_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    config: OpsConfig,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An override under OPSBOT_TEMPLATES that does not render: the user gets a reference, the log the details."""
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "help.yml.j2").write_text("text: {{ no_such_field }}\n", encoding="utf-8")
    bot = Bot(
        emulator=emulator,
        db_url=pg_url,
        redis_client=redis_client,
        prefix=redis_prefix,
        config=config,
        renderer=Renderer(tmp_path),
    )
    reply = bot.command("help").seen()
    reference = re.search(r"Something went wrong on our side; it has been logged \(ref `([0-9a-f]{8})`\)", reply)
    assert reference is not None, reply
    assert any(reference.group(1) in r.getMessage() and r.exc_info for r in caplog.records)
    assert "no_such_field" not in reply


def test_help_lists_every_subcommand_an_admin_may_run_and_help_of_a_group_lists_the_group(opsbot: Bot) -> None:
    shown = opsbot.command("help", user="U0ADMIN").seen()
    assert "/ops incident postmortem <id>" in shown and "truncated" not in shown  # not cut at 3,000 characters
    group = opsbot.command("help incident", user="U0DEV").seen()
    assert "/ops incident declare" in group and "/ops incident resolve" in group and "needs one of" not in group


def test_locks_shows_the_first_forty_and_counts_the_rest(opsbot: Bot) -> None:
    store = opsbot.services.adapters.locks
    for n in range(45):
        store.acquire(f"deploy/svc{n:03d}/production", holder="U0DEV", purpose="bench", ttl_seconds=600)
    reply = opsbot.command("locks", user="U0VIEWER")
    assert reply.text == "45 deploy locks held"
    assert "*deploy/svc039/production*" in reply.seen() and "svc040" not in reply.seen()
    assert "… and 5 more locks held, not shown here (a message shows 40)" in reply.seen()
