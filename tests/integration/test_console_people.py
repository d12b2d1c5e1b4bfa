"""`opsbot console` finds a person typed as @name, as the README's `/ops audit by=@alice` shows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_the_console_reads_audit_by_a_typed_name(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPSBOT_", "REDIS_URL", "DATABASE_URL"))}
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "console", "--user", "U0ADMIN"],
        input="/ops locks\n/ops audit by=@alice\n/ops audit by=@zed\n",
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    found = result.stdout.split("» /ops audit by=@alice", 1)[1].split("» /ops audit by=@zed", 1)
    assert "by @alice" in found[0] and "*command.locks* → ok" in found[0]  # sent as Slack sends a picked @alice
    assert "`@zed` (by=) is not a user of this workspace; pick the person from the @ list." in found[1]


def test_the_console_sends_typed_text_as_slack_does(tmp_path: Path) -> None:
    """Escaped `&`, `<`, `>` (the manifest's should_escape) and a picked @name as a mention: shown as typed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPSBOT_", "REDIS_URL", "DATABASE_URL"))}
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "console"],
        input='/ops lock api staging --reason "a < b & c > d, ask @bob"\n/ops lock web staging --reason "<@U0APPROVER1> &amp;"\n',
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Reason: a < b & c > d, ask @bob" in result.stdout
    # Typed markup goes through Slack's escaping and opsbot's unescaping as it would from Slack: a person's markup
    # shows as that person (as a picked mention would), a typed entity as the text typed.
    assert "Reason: @bob &amp;" in result.stdout
