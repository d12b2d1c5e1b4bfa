"""The `opsbot` command as an operator meets it: one clear line and an exit code, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support import config_data

ROOT = Path(__file__).resolve().parents[2]


def opsbot(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPSBOT_", "REDIS_URL", "DATABASE_URL"))}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env={**base, **(env or {})},
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_config(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "opsbot.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_missing_secret_is_one_line_naming_the_variable_and_exit_2(tmp_path: Path) -> None:
    config = write_config(tmp_path, config_data())
    result = opsbot("serve", env={"REDIS_URL": "redis://127.0.0.1:6379/0", "OPSBOT_CONFIG": str(config)})
    assert result.returncode == 2
    assert result.stderr.strip() == "opsbot: SLACK_SIGNING_SECRET is not set: Slack signs every request with it"


def test_socket_mode_needs_the_app_token(tmp_path: Path) -> None:
    result = opsbot("socket", env={"SLACK_BOT_TOKEN": "xoxb-1", "REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert result.returncode == 2 and result.stderr.startswith("opsbot: SLACK_APP_TOKEN is not set")
    assert "Traceback" not in result.stderr


def test_serve_refuses_to_start_without_shared_redis(tmp_path: Path) -> None:
    result = opsbot("serve", env={"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"})
    assert result.returncode == 2
    assert "REDIS_URL is not set: locks must be shared between replicas (or pass --embedded-redis" in result.stderr


def test_an_invalid_config_is_listed_with_paths_and_the_server_does_not_start(tmp_path: Path) -> None:
    bad = config_data(channels={"deployments": "deploys", "incidents": "C0I", "alerts": "C0A"})
    bad["environments"]["production"]["aprovals"] = 3
    config = write_config(tmp_path, bad)
    checked = opsbot("check-config", str(config))
    assert checked.returncode == 1
    assert "channels.deployments: 'deploys' is not a Slack channel ID" in checked.stderr
    assert "environments.production.aprovals: Extra inputs are not permitted" in checked.stderr
    served = opsbot(
        "serve",
        env={
            "SLACK_BOT_TOKEN": "x",
            "SLACK_SIGNING_SECRET": "s",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "OPSBOT_CONFIG": str(config),
        },
    )
    assert served.returncode == 1 and "Traceback" not in served.stderr


def test_check_config_accepts_the_example() -> None:
    result = opsbot("check-config", "opsbot.example.yml")
    assert result.returncode == 0 and "opsbot.example.yml: ok" in result.stdout


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    config = write_config(tmp_path, config_data())
    result = opsbot(
        "serve",
        env={
            "SLACK_BOT_TOKEN": "x",
            "SLACK_SIGNING_SECRET": "s",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "OPSBOT_CONFIG": str(config),
            "DATABASE_URL": f"sqlite:///{tmp_path}/fresh.db",
        },
    )
    assert result.returncode == 2 and "run `opsbot db upgrade` first" in result.stderr


def test_db_upgrade_is_repeatable(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/ops.db"}
    assert opsbot("db", "upgrade", env=env).returncode == 0
    again = opsbot("db", "upgrade", env=env)
    assert again.returncode == 0 and "up to date" in again.stdout


def test_console_runs_on_a_fresh_machine_with_no_environment(tmp_path: Path) -> None:
    result = opsbot(
        "console",
        "-c",
        "/ops help",
        "-c",
        "/ops locks",
        "-c",
        "/ops lock api production --reason demo",
        "-c",
        "as @U0ADMIN",
        "-c",
        "/ops audit",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "only visible to @dave (ephemeral)" in out and "OPSBOT HELP" in out
    assert "No locks are held" in out
    assert "is locked by @dave" in out
    assert "(now acting as @alice U0ADMIN)" in out
    assert "AUDIT LOG" in out and "command.lock" in out
    assert (tmp_path / "opsbot.db").exists()


def test_console_reads_a_script_from_stdin(tmp_path: Path) -> None:
    script = "/ops lock api staging --reason 'stdin demo'\n/ops locks\nwhoami\n"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPSBOT_", "REDIS_URL", "DATABASE_URL"))}
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "console"],
        input=script,
        env=base,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr
    assert "» /ops locks" in result.stdout and "held by hand: stdin demo" in result.stdout
    assert "@dave U0DEPLOYER in #ops-console" in result.stdout
