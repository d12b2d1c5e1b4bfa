"""Run a console demo script (scripts/*-demo.txt) as `opsbot console` does from the repository root.

The demo config, scripts/deploys-demo.yml, deploys a pretend `api` with scripts/demo_deploy.py; here its
pretend service listens on a free port of this run and keeps its state in the test's directory.
"""

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


def run_demo(script: str, tmp_path: Path, timeout: float = 180) -> str:
    """What `opsbot console < scripts/<script>` prints with scripts/deploys-demo.yml; fails on a non-zero exit."""
    port, state = free_port(), tmp_path / "demo-state"
    config = tmp_path / "deploys-demo.yml"
    config.write_text((ROOT / "scripts" / "deploys-demo.yml").read_text().replace("127.0.0.1:18765", f"127.0.0.1:{port}"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPSBOT_", "REDIS_URL", "DATABASE_URL"))}
    env.update(
        OPSBOT_CONFIG=str(config),
        DATABASE_URL=f"sqlite:///{tmp_path / 'demo.db'}",
        DEMO_SERVICE_PORT=str(port),
        DEMO_STATE_DIR=str(state),
    )
    try:
        result = subprocess.run(
            [sys.executable, "-m", "bot.cli", "console"],
            input=(ROOT / "scripts" / script).read_text(),
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    finally:
        pid_file = state / "service.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
    assert result.returncode == 0, result.stderr
    return result.stdout
