"""The deploys console demo, as documented in docs/deploys.md: two approvals, a refused self-approval,
a verified success, a failed verification and a rollback through its button, with the real health engine."""

from __future__ import annotations

import re
from pathlib import Path

from tests.integration.console_demo import run_demo


def test_the_console_demo_deploys_verifies_and_rolls_back(tmp_path: Path) -> None:
    out = run_demo("deploys-demo.txt", tmp_path)
    assert "You requested this deploy; another approver must approve it (the two-person rule)." in out
    assert "✅ Approved by @carol" in out and "✅ Approved by @alice" in out
    assert "🚀 Starting deployment of v1.4.2 to production" in out
    # How many checks fit in the 3 s window depends on how fast each one answers: not what is tested.
    assert re.search(
        r"✅ \*Deployment of v1\.4\.2 to production completed\* \(api\)\n│ Verified: (1 check|[2-4] checks) over 3s passed, "
        r"reporting v1\.4\.2\.",
        out,
    )
    assert "failed verification:* health check /api/production/health failed: status 503 (expected 200)" in out
    assert "⚠️ *Rolled back api to v1.4.2 in production* due to v1.4.3-broken failed in production" in out
    history = out.split("» /ops history api production", 1)[1]
    assert "*rollback* to *v1.4.2* · api in production · *succeeded*" in history
    assert "*deploy* of *v1.4.3-broken* · api in production · *rolled back*" in history
