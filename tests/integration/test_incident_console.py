"""The console demo of an incident, as documented in docs/incidents.md: the real app, forms, a reminder, a reaction."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """/ops incident declare P1 "Checkout errors" --service api --impact "5% of checkouts fail"
in inc-
/ops incident update identified "Bad config in v1.4.2" --next 30m
/ops incident update
submit status=monitoring current_status="Rolled back to v1.4.1" next_update=
submit next_update=2s
say Error rate back to 0.1% after the rollback
react
wait 3
/ops incident timeline
/ops incident resolve "Config reverted"
"""


def test_the_console_runs_an_incident_from_declaration_to_post_mortem(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPSBOT_", "REDIS_URL", "DATABASE_URL"))}
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "console", "--user", "U0ADMIN"],
        input=SCRIPT,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "🚨 INCIDENT: API - CHECKOUT ERRORS" in out and "(now typing in #inc-" in out
    assert "form: Incident update" in out and "Next update: next_update=" in out
    assert "✗ The form says:\n  next_update: Next update is required" in out
    assert "(form submitted)" in out and "Rolled back to v1.4.1" in out
    assert "⏰ @alice, the next update for *INC-1* was due at" in out and "[" in out.split("⏰", 1)[1].split("└", 1)[0]
    timeline = out.split("» /ops incident timeline", 1)[1].split("» /ops incident resolve", 1)[0]
    assert "*Note* · @alice · Error rate back to 0.1% after the rollback" in timeline
    assert "*Update* · @alice · monitoring: Rolled back to v1.4.1" in timeline
    assert "INCIDENT RESOLVED" in out and "# Post-mortem (draft): INC-1 api - Checkout errors" in out
