"""The console demo of flags, exactly as docs/flags.md shows it: list, kill, unkill with two approvers, a guarded rollout."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main

REPO = Path(__file__).resolve().parents[2]
DEMO = [
    "/ops flag list",
    '/ops flag kill checkout.new-flow --reason "checkout 500s after the 14:00 deploy"',
    '/ops flag unkill checkout.new-flow --reason "fix is live"',
    "as @U0APPROVER1",
    "press Approve",
    "as @U0APPROVER2",
    "press Approve",
    "as @U0DEPLOYER",
    "/ops flag rollout search.semantic 60",
    "/ops flag rollout search.semantic 30",
]


def test_the_console_demo_runs_on_local_sqlite_flag_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPSBOT_CONFIG", str(REPO / "opsbot.example.yml"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'opsbot.db'}")
    monkeypatch.delenv("REDIS_URL", raising=False)

    assert main(["console", *[arg for line in DEMO for arg in ("-c", line)]]) == 0
    out = capsys.readouterr().out

    chunks = out.split("\n» ")[1:]
    assert [c.split("\n", 1)[0] for c in chunks] == DEMO
    listing, kill, unkill, _, first, _, second, _, guarded, small = chunks
    assert "*checkout.new-flow* · service api" in listing and "production: 🟢 on · 30%" in listing
    assert "FLAG KILLED: CHECKOUT.NEW-FLOW IN PRODUCTION" in kill and "[1] Undo" in kill
    assert "APPROVAL NEEDED: UNKILL CHECKOUT.NEW-FLOW IN PRODUCTION" in unkill and "Not changed yet" in unkill
    assert "1 of 2" in first
    assert "@dave unkilled *checkout.new-flow*" in second and "Approved by @bob, @carol" in second
    assert "KILL UNDONE" in second
    assert "ROLL OUT SEARCH.SEMANTIC TO 60% IN PRODUCTION" in guarded and "above the 50% ceiling" in guarded
    assert "@dave changed the rollout of *search.semantic*" in small and "on · 10% → *on · 30%*" in small
    assert (tmp_path / "opsbot-demo-flags-production.db").exists()
