"""`opsbot console` shows the App Home with `home`: the same view Slack would show, from the same app and emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_home_in_the_console_shows_a_lock_and_a_flag_kill_to_another_user(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPSBOT_", "REDIS_URL", "DATABASE_URL"))}
    env["OPSBOT_CONFIG"] = str(ROOT / "opsbot.example.yml")
    lines = [
        '/ops lock api staging --reason "db maintenance"',
        '/ops flag kill checkout.new-flow --reason "500s after the deploy"',
        "as @U0APPROVER1",
        "home",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "console", *[arg for line in lines for arg in ("-c", line)]],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    home = result.stdout.split("» home", 1)[1]
    assert "Home of @bob · the app's Home tab" in home
    assert "*deploy/api/staging* · held by @dave" in home and "db maintenance" in home
    assert "*checkout.new-flow* in production · killed " in home and "ago by @dave · 500s after the deploy" in home
    assert "Traceback" not in result.stderr
