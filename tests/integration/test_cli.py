"""The `opsbot` command as an operator meets it: one clear line and an exit code, never a traceback."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from pytest_mock import MockerFixture

from bot.adapters.sql.audit import SqlAuditLog
from bot.adapters.sql.engine import create_db_engine, schema_at_head, upgrade
from bot.domain.shared.errors import OpsError
from bot.domain.shared.ports import AuditEntry, SystemClock
from tests.servers import free_port
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
    result = opsbot("check-config", "opsbot.example.yml", env={"API_HEALTH_TOKEN": "t"})
    assert result.returncode == 0 and "opsbot.example.yml: ok" in result.stdout


def test_check_config_names_a_secret_variable_that_is_not_set() -> None:
    """A deploy or check would fail at run time, after its approvals: check-config says it first."""
    result = opsbot("check-config", "opsbot.example.yml")
    assert result.returncode == 1
    assert (
        "services.api.environments.production.health[2].headers_from_env.Authorization: "
        "API_HEALTH_TOKEN is not set in this environment" in result.stderr
    )
    alone = opsbot("check-config", "opsbot.example.yml", "--skip-environment")
    assert alone.returncode == 0 and "ok" in alone.stdout


def test_a_key_given_twice_in_the_config_is_an_error_not_a_silent_override(tmp_path: Path) -> None:
    text = (ROOT / "opsbot.example.yml").read_text(encoding="utf-8")
    assert "\n  production:\n" in text
    doubled = text.replace("\n  production:\n", "\n  production:\n    approvals: 0\n  production:\n", 1)
    path = tmp_path / "opsbot.yml"
    path.write_text(doubled, encoding="utf-8")
    result = opsbot("check-config", str(path), "--skip-environment")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "invalid YAML: duplicate key 'production' (first on line" in result.stderr


def test_audit_export_with_a_bad_since_or_a_closed_pipe_ends_without_a_traceback(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/ops.db"}
    unmigrated = opsbot("audit", "export", env=env)
    assert unmigrated.returncode == 2 and "is not migrated" in unmigrated.stderr and "opsbot db upgrade" in unmigrated.stderr
    assert opsbot("db", "upgrade", env=env).returncode == 0
    banana = opsbot("audit", "export", "--since", "banana", env=env)
    assert banana.returncode == 2
    assert banana.stderr.strip() == "opsbot: --since: `banana` is not a duration like 30m, 2h, 1d or 1h30m"
    audit = SqlAuditLog(create_db_engine(env["DATABASE_URL"]), SystemClock())
    for i in range(600):  # more than a pipe's buffer (64 KiB): the exporter is still writing when head exits
        audit.record(AuditEntry(actor="U0DEV", action="command.lock", outcome="ok", params={"i": i, "reason": "x" * 200}))
    export = subprocess.Popen(  # `opsbot audit export | head -n 1`, piped without a shell
        [sys.executable, "-m", "bot.cli", "audit", "export"],
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert export.stdout is not None and export.stderr is not None
    head = subprocess.run(["head", "-n", "1"], stdin=export.stdout, capture_output=True, text=True, timeout=90)
    export.stdout.close()  # head has exited: the exporter's next write meets a closed pipe
    errors = export.stderr.read().decode()
    assert export.wait(timeout=90) == 0
    assert head.stdout.count("\n") == 1 and "Traceback" not in errors and "BrokenPipe" not in errors, errors


def test_a_templates_folder_that_does_not_exist_stops_the_start_with_one_line(tmp_path: Path) -> None:
    result = opsbot("console", "-c", "/ops help", env={"OPSBOT_TEMPLATES": str(tmp_path / "nope")})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"opsbot: OPSBOT_TEMPLATES is wrong: {tmp_path / 'nope'} does not exist; it names a folder of template overrides"
    )


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
    assert re.search(r"is not migrated \(\d+ migrations? to apply: 0001_audit_log", result.stderr)
    assert "is not set" not in result.stderr


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


def test_console_upgrades_a_database_an_older_opsbot_left_behind(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ops.db"
    upgrade(url, "0005_durable_operations")

    result = opsbot("console", "-c", "/ops lock api production --reason older", "-c", "/ops locks", env={"DATABASE_URL": url})

    assert result.returncode == 0, result.stderr
    assert "held by hand: older" in result.stdout
    assert schema_at_head(create_db_engine(url))


def test_importing_the_cli_loads_neither_pydantic_nor_the_config_so_a_command_controls_its_start_up() -> None:
    # `opsbot console` pauses the garbage collector from its first heavy import (bot/cli.py, _collector_paused).
    probe = (
        "import sys, bot.cli; print([m for m in ('pydantic', 'bot.config', 'bot.settings', 'sqlalchemy') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


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


def test_console_wait_with_a_bad_number_answers_with_its_usage_and_goes_on(tmp_path: Path) -> None:
    result = opsbot(
        "console", "-c", "wait abc", "-c", "wait -5", "-c", "/ops help", env={"DATABASE_URL": f"sqlite:///{tmp_path}/c.db"}
    )
    assert result.returncode == 0, result.stderr
    assert "`wait abc`: give seconds from 0 to 600, like `wait 2` or `wait 0.5`." in result.stdout
    assert "`wait -5`: give seconds from 0 to 600" in result.stdout
    assert "OPSBOT HELP" in result.stdout and "Traceback" not in result.stderr


def test_socket_mode_with_slack_unreachable_says_so_in_one_line_per_try_and_keeps_trying(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path}/ops.db",
        "SLACK_APP_TOKEN": "xapp-1-test",
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_API_URL": f"http://127.0.0.1:{free_port()}/api/",  # nothing listens there
        "OPSBOT_CONFIG": str(write_config(tmp_path, config_data())),
    }
    assert opsbot("db", "upgrade", env=env).returncode == 0
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPSBOT_", "REDIS_URL", "DATABASE_URL"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "socket", "--embedded-redis"],
        env={**base, **env},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(iter(process.stderr.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    prefix = "opsbot: Slack could not be reached to open a Socket Mode connection ("
    try:
        # Backoff 1 s, 2 s …: wait for two tries (how long the start takes depends on the machine's load).
        deadline = time.monotonic() + 60
        while sum(line.startswith(prefix) for line in list(seen)) < 2 and time.monotonic() < deadline:
            assert process.poll() is None, "".join(seen)  # still trying, not dead
            time.sleep(0.1)
        assert process.poll() is None
    finally:
        process.terminate()
        process.wait(timeout=10)
        reader.join(timeout=10)
    stderr = "".join(seen)
    lines = [line for line in stderr.splitlines() if line.strip()]
    tries = [line for line in lines if line.startswith(prefix)]
    assert len(tries) >= 2 and all("; retrying in " in line for line in tries), stderr
    assert "Traceback" not in stderr and "will be unused" not in stderr, stderr


def test_the_console_shows_invites_and_pins_as_slack_shows_them_in_the_channel(tmp_path: Path) -> None:
    result = opsbot(
        "console",
        "-c",
        '/ops incident declare P1 Checkout down --impact "checkouts fail"',
        env={"DATABASE_URL": f"sqlite:///{tmp_path}/c.db"},
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"➕ invited @dave, .* to #inc-\d{8}-checkout-down", result.stdout), result.stdout
    assert re.search(r"📌 pinned a message in #inc-\d{8}-checkout-down", result.stdout)


def test_a_setting_set_to_an_unusable_value_is_named_with_its_value_and_the_rule(tmp_path: Path) -> None:
    result = opsbot("check-config", str(ROOT / "opsbot.example.yml"), "--skip-environment", env={"OPSBOT_GIL_SWITCH_MS": "0"})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == "opsbot: OPSBOT_GIL_SWITCH_MS=0 is not usable: Input should be greater than or equal to 0.05"
    nan = opsbot("check-config", str(ROOT / "opsbot.example.yml"), "--skip-environment", env={"OPSBOT_GIL_SWITCH_MS": "nan"})
    assert nan.returncode == 2 and "OPSBOT_GIL_SWITCH_MS=nan is not usable: Input should be a finite number" in nan.stderr
    secret = opsbot("check-config", str(ROOT / "opsbot.example.yml"), env={"OPSBOT_QUEUE": "x", "PORT": "not-a-port"})
    assert secret.returncode == 2 and "PORT=not-a-port is not usable" in secret.stderr


def test_a_config_that_is_not_utf8_or_nests_too_deep_gets_one_line_not_a_traceback(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.yml"
    latin1.write_bytes((ROOT / "opsbot.example.yml").read_bytes() + "# café\n".encode("latin-1"))
    result = opsbot("check-config", str(latin1), "--skip-environment")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "has 1 error:" in result.stderr and "(file): is not UTF-8 text (byte" in result.stderr
    deep = tmp_path / "deep.yml"
    deep.write_text((ROOT / "opsbot.example.yml").read_text() + "x: " + "[" * 2000 + "]" * 2000 + "\n")
    result = opsbot("check-config", str(deep), "--skip-environment")
    assert result.returncode == 1 and "Traceback" not in result.stderr and "invalid YAML" in result.stderr


def test_a_database_opsbot_cannot_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'future.db'}"
    assert opsbot("db", "upgrade", env={"DATABASE_URL": url}).returncode == 0
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099_future'"))
    engine.dispose()
    for command in (["db", "upgrade"], ["console", "-c", "/ops locks"]):
        result = opsbot(*command, env={"DATABASE_URL": url})
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert "has a schema this opsbot does not know" in result.stderr and "newer opsbot" in result.stderr
    gone = opsbot("db", "upgrade", env={"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere"})
    assert gone.returncode == 2 and "Traceback" not in gone.stderr
    assert "cannot be used: connection refused" in gone.stderr and "127.0.0.1:1" not in gone.stderr.split("cannot be used")[1]


def test_sqlite_older_than_3_35_is_refused_with_what_to_do(mocker: MockerFixture) -> None:
    mocker.patch.object(sqlite3, "sqlite_version_info", (3, 31, 1))
    mocker.patch.object(sqlite3, "sqlite_version", "3.31.1")
    with pytest.raises(OpsError, match=r"needs SQLite 3\.35\.0 or later .* this Python's SQLite is 3\.31\.1: use PostgreSQL"):
        create_db_engine("sqlite:///unused.db")
