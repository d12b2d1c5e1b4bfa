"""The Grafana dashboard in docs/ charts only metrics opsbot exports, and every one of them."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from bot.adapters.metrics import Metrics, OutboxCollector

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-opsbot.json"


class EmptyOutbox:
    def pending_summary(self) -> tuple[int, datetime | None]:
        return 0, None


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def test_the_dashboard_charts_every_exported_metric_and_nothing_else() -> None:
    metrics = Metrics()
    metrics.scrape_time(OutboxCollector(EmptyOutbox(), Clock()))
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    charted = {
        re.sub(r"_(bucket|count|sum)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"opsbot_\w+", target["expr"])
    }
    families = list(metrics.registry.collect())
    exported = {family.name + "_total" if family.type == "counter" else family.name for family in families}
    assert len(exported) == 13 and charted == exported, (sorted(charted), sorted(exported))
