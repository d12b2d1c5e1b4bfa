"""`opsbot outbox list|retry|drop`: what an operator sees of effects Slack refused, and how they put one back."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.config import OpsConfig
from bot.console.slack_emulator import SlackEmulator
from tests.deploy_kit import ServiceDouble, deploy_config, services_double, state_dir  # noqa: F401 - fixtures
from tests.integration.test_cli import opsbot as run_opsbot
from tests.support import Bot


@pytest.fixture
def config(state_dir: Path, services_double: ServiceDouble) -> OpsConfig:
    return deploy_config(state_dir, services_double.base_url)


def test_an_operator_lists_a_failed_post_retries_it_and_it_is_delivered_once(opsbot: Bot, emulator: SlackEmulator) -> None:
    env = {"DATABASE_URL": opsbot.settings.database_url}
    assert "the outbox is empty" in run_opsbot("outbox", "list", env=env).stdout

    emulator.fail("chat.postMessage", "channel_not_found")  # e.g. the deployments channel was renamed
    opsbot.command("deploy v1.2.3 to production", user="U0DEV")
    listed = run_opsbot("outbox", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    [line] = [row for row in listed.stdout.splitlines() if "slack.post" in row]
    assert "failed" in line and "Slack refused it: channel_not_found" in line and "approval:" in line
    effect_id = re.match(r"\s*(\d+)", line).group(1)  # type: ignore[union-attr]
    assert ("opsbot", "outbox.failed", "failed") in opsbot.audit_actions()

    retried = run_opsbot("outbox", "retry", effect_id, "--reason", "channel is back", env=env)
    assert retried.returncode == 0 and f"effect {effect_id}" in retried.stdout and "pending again" in retried.stdout
    opsbot.services.delivery.drain()  # what `opsbot worker` does every second
    requests = [m for m in emulator.in_channel("C0DEPLOYS") if "Approval needed" in m.seen()]
    assert len(requests) == 1
    assert "the outbox is empty" in run_opsbot("outbox", "list", env=env).stdout

    again = run_opsbot("outbox", "drop", effect_id, "--reason", "by mistake", env=env)
    assert again.returncode == 1 and "is delivered; only pending or failed effects can be" in again.stderr
    assert run_opsbot("outbox", "drop", effect_id, env=env).returncode == 2  # --reason is required
    missing = run_opsbot("outbox", "retry", "999999", env=env)
    assert missing.returncode == 1 and "there is no effect 999999" in missing.stderr
    actions = [(a, o) for actor, a, o in opsbot.audit_actions() if actor.startswith("cli:")]
    assert actions == [("outbox.retry", "ok"), ("outbox.drop", "conflict")]
    assert opsbot.services.adapters.audit.verify().ok  # type: ignore[attr-defined]
