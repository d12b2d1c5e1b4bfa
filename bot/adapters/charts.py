"""``ChartImages`` with matplotlib (a bare ``Figure`` draws with the Agg canvas: no pyplot, no display): `/ops metrics`' chart as a PNG.

One panel per guardrail, sharing the time axis (UTC): the series, its ``warn`` and ``critical`` thresholds as
dashed lines, and each deploy or rollback of the window as a vertical line labelled with its version (red when it
failed). A guardrail that could not be read is an empty panel saying why. Ratios are drawn as percentages.
"""

from __future__ import annotations

import io
import threading
from typing import TYPE_CHECKING

from bot.domain.deploys.charts import ChartSeries, MetricsChart

if TYPE_CHECKING:
    from matplotlib.axes import Axes

SCALE = {"ratio": 100.0}  # a ratio is drawn as a percentage, as messages show it
LABEL = {"ratio": "%", "percent": "%", "ms": "ms", "s": "s"}
_DRAWING = threading.Lock()  # matplotlib's font cache and text layout are not thread-safe


class MatplotlibCharts:
    """Renders with an object-oriented ``Figure`` (no pyplot global state), one figure per call."""

    def __init__(self, width_in: float = 10.0, panel_height_in: float = 2.4, dpi: int = 100) -> None:
        self._width, self._panel, self._dpi = width_in, panel_height_in, dpi

    def render(self, chart: MetricsChart) -> bytes:
        # matplotlib is imported on the first chart, not at start: it is a third of a worker's memory (about 40 MB)
        # and of `opsbot console`'s start-up time, for a command most sessions never run (bench/ack_latency.py).
        import matplotlib.dates as mdates
        from matplotlib.figure import Figure

        rows = max(len(chart.series), 1)
        with _DRAWING:
            height = self._panel * rows + 0.8
            figure = Figure(figsize=(self._width, height), dpi=self._dpi)
            # Fixed margins in inches, not a layout engine: "constrained" cost 40 % more per chart (bench/metric_chart.py).
            figure.subplots_adjust(left=0.08, right=0.98, top=1 - 0.45 / height, bottom=0.45 / height, hspace=0.12)
            axes = figure.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
            figure.suptitle(f"{chart.title} · {chart.start:%H:%M}–{chart.end:%H:%M} UTC", fontsize=12)
            for ax, series in zip(axes, chart.series, strict=False):
                self._panel_of(ax, series, chart)
            short = (chart.end - chart.start).total_seconds() < 600  # minutes alone would repeat on the axis
            clock = "%H:%M:%S" if short else "%H:%M"
            axes[-1].xaxis.set_major_formatter(mdates.DateFormatter(clock, tz=chart.end.tzinfo))  # type: ignore[no-untyped-call]
            out = io.BytesIO()
            figure.savefig(out, format="png")
        return out.getvalue()

    def _panel_of(self, ax: Axes, series: ChartSeries, chart: MetricsChart) -> None:
        scale = SCALE.get(series.unit, 1.0)
        ax.set_xlim(chart.start, chart.end)  # type: ignore[arg-type]
        ax.set_ylabel(f"{series.name} ({LABEL.get(series.unit, series.unit)})", fontsize=9)
        ax.grid(True, alpha=0.3)
        if series.points:
            times = [t for t, _ in series.points]
            few = len(times) < 30  # a handful of points: show each one, a line alone may be too short to see
            ax.plot(times, [v * scale for _, v in series.points], color="#1f77b4", linewidth=1.5, marker="." if few else None)  # type: ignore[arg-type]
        else:
            ax.text(0.5, 0.5, f"unknown: {series.reason[:120]}", transform=ax.transAxes, ha="center", va="center", fontsize=9)
        for value, colour, word in ((series.warn, "#ff9f1c", "warn"), (series.critical, "#d62728", "critical")):
            if value is not None:
                ax.axhline(value * scale, color=colour, linestyle="--", linewidth=1, label=word)
        for mark in chart.deploys:
            colour = "#d62728" if mark.failed else "#2ca02c"
            ax.axvline(mark.at, color=colour, linewidth=2)  # type: ignore[arg-type]
            ax.annotate(
                mark.label[:30],
                xy=(mark.at, 1.0),
                xycoords=("data", "axes fraction"),
                rotation=90,
                va="top",
                ha="right",
                fontsize=7,
                color=colour,
            )
        ax.set_ylim(bottom=0)
