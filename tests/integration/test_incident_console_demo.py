"""The incident console demo, as documented in docs/incidents.md: declare, two updates, a real rollback during
the incident (approved, run by the deploy program, verified), a reminder, the timeline, and resolve with a draft."""

from __future__ import annotations

import re
from pathlib import Path

from tests.integration.console_demo import ROOT, run_demo

SCRIPT = [line for line in (ROOT / "scripts" / "incident-demo.txt").read_text().splitlines() if line.strip()]


def steps(out: str) -> list[tuple[str, str]]:
    """(script line, what it printed), in order."""
    return [(line, text) for line, _, text in (chunk.partition("\n") for chunk in out.split("\n» ")[1:])]


def step(printed: list[tuple[str, str]], starts: str, then: int = 0) -> str:
    """What the first line starting with ``starts`` printed (or the line ``then`` lines after it)."""
    index = next(i for i, (line, _) in enumerate(printed) if line.startswith(starts))
    return printed[index + then][1]


def in_channel(text: str, prefix: str) -> list[str]:
    """The messages printed for a channel whose name starts with ``prefix`` (not ephemeral ones)."""
    return [m for m in text.split("┌─ #")[1:] if m.startswith(prefix) and "only visible to" not in m.split("\n", 1)[0]]


def test_the_incident_demo_shows_a_rollback_during_the_incident_on_its_timeline_and_in_the_post_mortem(tmp_path: Path) -> None:
    out = run_demo("incident-demo.txt", tmp_path)
    printed = steps(out)
    assert [line for line, _ in printed] == SCRIPT

    assert "failed verification:* health check /api/production/health failed" in step(
        printed, "/ops deploy v1.4.3-broken", then=4
    )
    posted = in_channel(step(printed, "/ops incident declare"), "inc-")
    declared = [m for m in posted if "WHAT CHANGED" not in m.upper()]  # the declaration; then what changed in api
    assert len(declared) == 1 and "🚨 INCIDENT: API - CHECKOUT ERRORS" in declared[0]
    assert len(posted) == 2 and "What changed" in posted[1]
    first = in_channel(step(printed, "/ops incident update identified"), "inc-")
    assert any("📣 INCIDENT UPDATE" in m and "🎯 Identified" in m for m in first)

    rollback = step(printed, "/ops rollback api production")
    assert "APPROVAL NEEDED: ROLL BACK API TO V1.4.2 IN PRODUCTION" in rollback
    approved = step(printed, "/ops rollback api production", then=2)  # bob's Approve
    assert "⚠️ *Rolled back api to v1.4.2 in production* due to checkout errors since v1.4.3-broken" in approved
    assert re.search(r"Verified: (1 check|[2-4] checks) over 3s passed, reporting v1\.4\.2\.", approved)  # as many as fit in 3 s
    incident_side = in_channel(approved, "inc-")
    assert any("⏪ *rollback.started* · api/production" in m for m in incident_side)
    assert any(
        "⏪ *rollback.done* · api/production · rollback of api to v1.4.2 in production succeeded" in m for m in incident_side
    )

    second = in_channel(step(printed, "/ops incident update monitoring"), "inc-")
    assert any("📣 INCIDENT UPDATE" in m and "👀 Monitoring" in m for m in second)
    reminder = in_channel(step(printed, "wait"), "inc-")
    assert (
        len(reminder) == 1
        and "⏰ @dave, the next update for *INC-1* was due at" in reminder[0]
        and "Snooze 15 min" in reminder[0]
    )

    timeline = step(printed, "/ops incident timeline")
    for entry in (
        "*Declared* · @dave",
        "*Update* · @dave · identified:",
        "*Service event* · @dave · rollback.started",
        "*Service event* · @dave · rollback.done · api/production",
        "*Update* · @dave · monitoring:",
        "*Reminder* · opsbot",
    ):
        assert entry in timeline
    assert "v1.4.3-broken to production" not in timeline  # the bad deploy came before the incident

    resolved = step(printed, "/ops incident resolve")
    assert "INCIDENT RESOLVED: API - CHECKOUT ERRORS" in resolved
    draft = resolved.split("# Post-mortem (draft): INC-1 api - Checkout errors", 1)[1]
    draft_timeline = draft.split("## Timeline (UTC)", 1)[1].split("## Deploys, rollbacks and flag changes", 1)[0]
    assert (
        "Service event · @U0DEPLOYER · rollback.done · api/production · rollback of api to v1.4.2 in production succeeded"
        in draft_timeline
    )
    assert "Reminder · @opsbot · update overdue" in draft_timeline and draft_timeline.count("· Update ·") == 2
