"""The deploys console demo, as documented in docs/deploys.md: two approvals, a refused self-approval,
a verified success, a failed verification and a rollback through its button, with the real health engine."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_console_demo_deploys_verifies_and_rolls_back(tmp_path: Path) -> None:
    port, state = free_port(), tmp_path / "demo-state"
    config = tmp_path / "deploys-demo.yml"
    config.write_text((ROOT / "scripts" / "deploys-demo.yml").read_text().replace("127.0.0.1:18765", f"127.0.0.1:{port}"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPSBOT_", "REDIS_URL", "DATABASE_URL"))}
    env.update(OPSBOT_CONFIG=str(config), DATABASE_URL=f"sqlite:///{tmp_path / 'demo.db'}",
               DEMO_SERVICE_PORT=str(port), DEMO_STATE_DIR=str(state))
    try:
        result = subprocess.run([sys.executable, "-m", "bot.cli", "console"], input=(ROOT / "scripts" / "deploys-demo.txt").read_text(),
                                env=env, cwd=ROOT, capture_output=True, text=True, timeout=180)
    finally:
        pid_file = state / "service.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "the two-person rule needs someone else" in out
    assert "✅ Approved by @carol" in out and "✅ Approved by @alice" in out
    assert "🚀 Starting deployment of v1.4.2 to production" in out
    assert "✅ *Deployment of v1.4.2 to production completed* (api)\n│ Verified: 4 check(s) over 3s passed, reporting v1.4.2." in out
    assert "failed verification:* health check /api/production/health failed: status 503 (expected 200)" in out
    assert "⚠️ *Rolled back api to v1.4.2 in production* due to v1.4.3-broken failed in production" in out
    history = out.split("» /ops history api production", 1)[1]
    assert "*rollback* to *v1.4.2* · api in production · *succeeded*" in history
    assert "*deploy* of *v1.4.3-broken* · api in production · *rolled back*" in history
