"""`opsbot console` can tick a request's checklist: checkboxes show as `[N] ☐ item`, `press` ticks one (again: unticks)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_the_console_ticks_the_checklist_and_only_then_the_approve_counts(tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "opsbot.example.yml").read_text(encoding="utf-8"))
    config["environments"]["production"]["checklist"] = ["Rollback plan documented", "Backup created"]
    (tmp_path / "opsbot.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPSBOT_", "REDIS_URL", "DATABASE_URL"))}
    env["OPSBOT_CONFIG"] = str(tmp_path / "opsbot.yml")
    lines = [
        '/ops deploy v1.4.3 api to production --reason "release 42"',
        "as @U0APPROVER1",
        "press Approve",
        "press Rollback plan documented",
        "press Backup created",
        "press Backup created",
        "press Approve",
        "press Backup created",
        "press Approve",
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
    steps = result.stdout.split("\n» ")
    request = next(step for step in steps if step.startswith("/ops deploy"))
    assert "☐ Rollback plan documented" in request and "☐ Backup created" in request
    assert "Checklist: nobody has ticked it yet" in request
    assert "Tick every checklist item before approving: Rollback plan documented and Backup created are not ticked" in steps[3]
    assert "You ticked *Backup created*" in steps[5] and "Checklist: @bob 2 of 2 ✅" in steps[5]
    assert "You unticked *Backup created*" in steps[6] and "Checklist: @bob 1 of 2" in steps[6]
    assert "Tick every checklist item before approving: Backup created is not ticked" in steps[7]
    assert "You approved *Deploy v1.4.3 of api to production*: 1 of 2" in steps[9]
    assert "Traceback" not in result.stderr
