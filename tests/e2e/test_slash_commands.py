"""`/ops` through Bolt's real dispatch with signed requests; replies read back from the Slack emulator."""

from __future__ import annotations

from bot.console import payloads
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
