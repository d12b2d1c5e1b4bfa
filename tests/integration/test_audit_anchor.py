"""The audit chain's head published outside the database, and verification against it (SQLite and PostgreSQL).

Someone with database access can delete the newest rows and move the stored head back: the shorter chain
verifies. A head published to `channels.audit` fixes a row the chain must still reach.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from bot.adapters.sql.audit import SqlAuditLog
from bot.adapters.sql.engine import create_db_engine
from bot.adapters.sql.tables import audit_log as audit_log_table
from bot.config import OpsConfig
from bot.console.slack_emulator import SlackEmulator
from tests.integration.test_audit_log import entry, tamper
from tests.integration.test_cli import opsbot as run_opsbot
from tests.support import Bot, FrozenClock, config_data, make_config

AUDIT_CHANNEL = "C0AUDIT"


@pytest.fixture
def config() -> OpsConfig:
    data = config_data()
    data["channels"] = {**data["channels"], "audit": AUDIT_CHANNEL}
    data["audit"] = {"anchor_every_minutes": 60}
    return make_config(**data)


def cut_and_move_the_head_back(db_url: str, keep: int) -> None:
    """Delete every row after ``keep`` and set the head to row ``keep``: the chain left is consistent."""
    engine = create_db_engine(db_url)
    with engine.connect() as conn:
        kept_hash = conn.execute(sa.select(audit_log_table.c.hash).where(audit_log_table.c.seq == keep)).scalar_one()
    tamper(db_url, f"DELETE FROM audit_log WHERE seq > {keep}")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_head SET seq = :seq, hash = :hash WHERE id = 1"), {"seq": keep, "hash": kept_hash})


def test_a_chain_cut_below_a_published_head_verifies_alone_but_not_against_the_anchor(db_url: str) -> None:
    log = SqlAuditLog(create_db_engine(db_url), FrozenClock())
    for _ in range(6):
        log.record(entry())
    anchor = log.head()
    assert anchor[0] == 6 and log.verify(anchor).ok

    cut_and_move_the_head_back(db_url, keep=4)
    assert log.verify().ok  # on its own, the shorter chain is consistent: why the head is published elsewhere
    result = log.verify(anchor)
    assert not result.ok and result.first_bad_seq == 5
    assert result.reason == "the chain ends at row 4, below the published head (row 6): rows were cut and the head moved back"


def test_a_published_hash_that_no_longer_matches_its_row_is_a_rewrite(db_url: str) -> None:
    log = SqlAuditLog(create_db_engine(db_url), FrozenClock())
    for _ in range(3):
        log.record(entry())
    seq, _ = log.head()
    result = log.verify((seq, "a" * 64))
    assert not result.ok and result.first_bad_seq == 3
    assert "row 3 is not the row that was published" in result.reason and "rewritten at or below row 3" in result.reason


def test_the_reconciler_publishes_the_head_hourly_and_verify_checks_against_it(
    opsbot: Bot, emulator: SlackEmulator, pg_url: str
) -> None:
    opsbot.command("lock api staging --reason migration", user="U0DEV")
    repaired = opsbot.services.dispatcher.reconcile()
    assert any("published the audit chain's head" in line for line in repaired), repaired
    [posted] = emulator.in_channel(AUDIT_CHANNEL)
    seen = posted.seen()
    assert "Audit chain head" in seen and "opsbot audit verify --anchor" in seen
    row, digest = seen.split("--anchor ", 1)[1].split("`", 1)[0].split(":")
    assert not any("audit chain" in line for line in opsbot.services.dispatcher.reconcile())  # not due again for an hour

    env = {"DATABASE_URL": pg_url}
    verified = run_opsbot("audit", "verify", "--anchor", f"{row}:{digest}", env=env)
    assert verified.returncode == 0 and f"it reaches the published head (row {row})" in verified.stdout
    cut_and_move_the_head_back(pg_url, keep=int(row) - 1)
    broken = run_opsbot("audit", "verify", "--anchor", f"{row}:{digest}", env=env)
    assert broken.returncode == 1 and "below the published head" in broken.stdout
    wrong = run_opsbot("audit", "verify", "--anchor", "12:not-a-hash", env=env)
    assert wrong.returncode == 2 and "--anchor: give <row>:<sha256 hash>" in wrong.stderr


def test_opsbot_audit_anchor_posts_the_head_now_and_audits_it(
    opsbot: Bot, emulator: SlackEmulator, pg_url: str, config: OpsConfig, tmp_path: Path
) -> None:
    opsbot.command("lock api staging --reason migration", user="U0DEV")
    path = tmp_path / "opsbot.yml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")), encoding="utf-8")
    env = {
        "DATABASE_URL": pg_url,
        "OPSBOT_CONFIG": str(path),
        "SLACK_BOT_TOKEN": emulator.token,
        "SLACK_API_URL": emulator.api_url,
        "USER": "oncall",
    }
    result = run_opsbot("audit", "anchor", env=env)
    assert result.returncode == 0, result.stderr
    assert f"posted to <#{AUDIT_CHANNEL}>" in result.stdout
    [posted] = emulator.in_channel(AUDIT_CHANNEL)
    assert result.stdout.split("sha256 ")[1].split(":")[0] in posted.seen()
    assert ("cli:oncall", "audit.anchor", "ok") in opsbot.audit_actions()

    data = config.model_dump(mode="json")
    data["channels"].pop("audit")
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    unset = run_opsbot("audit", "anchor", env=env)
    assert unset.returncode == 2 and "no audit channel is configured: set channels.audit" in unset.stderr
