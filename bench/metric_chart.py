"""`/ops metrics` chart benchmark: drawing the PNG with matplotlib, and sharing it with files_upload_v2, in one run.

Draws a chart of 1, 3 and 5 guardrails (120 points each, the command's resolution over any window) with 4 deploys
marked, and uploads a 2-guardrail chart to the in-repo Slack emulator over loopback (files.getUploadURLExternal,
the POST of the bytes, files.completeUploadExternal). The kinds of work alternate so the machine's load weighs on
each alike. Prints medians and p95s in ms and the PNG sizes; the baseline beside them is an instant Prometheus-free
`render` of an empty one-panel chart (matplotlib's fixed cost per figure). Asserts nothing.

    python bench/metric_chart.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slack_sdk import WebClient

from bot.adapters.charts import MatplotlibCharts
from bot.adapters.slack.files import SlackFiles
from bot.console.slack_emulator import SlackEmulator
from bot.domain.deploys.charts import ChartSeries, DeployMark, MetricsChart


def chart(panels: int) -> MetricsChart:
    end = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)
    start = end - timedelta(hours=1)
    points = [(start + timedelta(seconds=30 * i), 0.01 + 0.002 * (i % 7)) for i in range(120)]
    series = [ChartSeries(f"metric_{n}", "ratio", points if panels else [], 0.01, 0.05) for n in range(max(panels, 1))]
    marks = [DeployMark(start + timedelta(minutes=m), f"v1.{m}.0", m == 45) for m in (10, 25, 40, 45)] if panels else []
    return MetricsChart("api · production", start, end, series, marks)


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    rounds = parser.parse_args().rounds
    charts = MatplotlibCharts()
    emulator = SlackEmulator().start()
    emulator.add_channel("C0OPS", "ops", ["U0DEV"])
    files = SlackFiles(WebClient(token=emulator.token, base_url=emulator.api_url))
    image = charts.render(chart(2))
    kinds: dict[str, Callable[[], object]] = {
        "empty 1-panel figure (baseline)": lambda: charts.render(chart(0)),
        "render, 1 guardrail": lambda: charts.render(chart(1)),
        "render, 3 guardrails": lambda: charts.render(chart(3)),
        "render, 5 guardrails": lambda: charts.render(chart(5)),
        "files_upload_v2 of a 2-guardrail PNG": lambda: files.upload(
            channel="C0OPS", filename="m.png", content=image, title="m", comment="📈"
        ),
    }
    timings: dict[str, list[float]] = {name: [] for name in kinds}
    charts.render(chart(1))  # the first figure loads fonts: not a round
    for _ in range(rounds):
        for name, work in kinds.items():
            timings[name].append(timed(work))
    emulator.stop()
    sizes = {n: len(charts.render(chart(n))) // 1024 for n in (1, 3, 5)}
    print(f"{rounds} rounds each, interleaved")
    print(f"| {'work':<40} | median ms | p95 ms |")
    print(f"|{'-' * 42}|-----------|--------|")
    for name, values in timings.items():
        p95 = sorted(values)[max(int(len(values) * 0.95) - 1, 0)]
        print(f"| {name:<40} | {statistics.median(values):9.1f} | {p95:6.1f} |")
    print("PNG sizes (KiB): " + ", ".join(f"{n} guardrail(s) {kib}" for n, kib in sizes.items()))


if __name__ == "__main__":
    main()
