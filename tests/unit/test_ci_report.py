"""What a version's checks add up to (bot/domain/deploys/ci.py): the counts people read, which check is named when one
failed, and names and links from GitHub that cannot break out of Slack's markup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.config import CiGate
from bot.domain.deploys.ci import CheckState, CiCheck, CiReport, CiState, CiUnreadable, describe_failure, minutes
from bot.domain.deploys.ci_gate import unreadable_line

PASSED = CheckState.PASSED
PENDING = CheckState.PENDING
FAILED = CheckState.FAILED


def report(*checks: CiCheck, missing: tuple[str, ...] = ()) -> CiReport:
    return CiReport("example/api", "v1.2.3", checks, missing)


def test_one_check_reads_in_the_singular() -> None:
    assert report(CiCheck("build", PASSED, "success")).summary == "✅ 1 of 1 check passed"


def test_a_failure_wins_over_pending_checks_and_names_the_first_failed_one() -> None:
    ci = report(
        CiCheck("build", PENDING, "in_progress"),
        CiCheck("lint", FAILED, "failure", "https://github.com/example/api/runs/1"),
        CiCheck("test", FAILED, "timed_out"),
    )
    assert ci.state is CiState.FAILED
    assert ci.summary == "❌ check `lint` failed (failure): <https://github.com/example/api/runs/1|details>"


def test_no_checks_is_pending_and_a_missing_required_check_keeps_it_pending() -> None:
    assert report().state is CiState.PENDING
    waiting = report(CiCheck("build", PASSED, "success"), missing=("e2e",))
    assert waiting.state is CiState.PENDING and waiting.summary == "waiting for CI (1 of 2 checks done; not reported yet: e2e)"


def test_a_hostile_check_name_and_link_stay_text() -> None:
    check = CiCheck("x|<!channel>", FAILED, "failure", "javascript:alert(1)")
    assert describe_failure(check) == "check `x¦‹!channel›` failed (failure)"


def test_minutes_read_right() -> None:
    assert (minutes(1), minutes(0.5), minutes(30)) == ("1 minute", "0.5 minutes", "30 minutes")


def test_a_poll_line_while_github_is_unreadable_stays_the_same_from_poll_to_poll() -> None:
    gate = CiGate(repo="example/api", poll_seconds=15)
    start = datetime(2026, 11, 30, 0, 10, 42, tzinfo=UTC)
    ends = start + timedelta(minutes=20)
    down = CiUnreadable(
        "ci_unreachable",
        "GitHub (https://api.github.com) could not be reached (ConnectError); try again in a minute",
        "GitHub (https://api.github.com) could not be reached (ConnectError)",
    )
    first = unreadable_line("⏳ waiting for CI (1 of 2 checks done)", down, gate, start, ends)
    assert first == (
        "⏳ waiting for CI (1 of 2 checks done); GitHub could not be read since 00:10 UTC (GitHub (https://api.github.com) "
        "could not be reached (ConnectError)); polling again every 15 s until 00:30 UTC"
    )
    assert unreadable_line(first, down, gate, start + timedelta(minutes=3, seconds=7), ends) == first
