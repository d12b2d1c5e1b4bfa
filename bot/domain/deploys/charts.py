"""What `/ops metrics` draws (the chart's model) and the two ports that make it an image in Slack."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from bot.domain.shared.errors import Unavailable


@dataclass(frozen=True)
class ChartSeries:
    """One guardrail over the window, in its unit; ``reason`` says why there are no points."""

    name: str
    unit: str
    points: list[tuple[datetime, float]]
    warn: float | None
    critical: float | None
    reason: str = ""


@dataclass(frozen=True)
class DeployMark:
    at: datetime
    label: str  # "v2.0.0" or "rollback to v1.0.0"
    failed: bool


@dataclass(frozen=True)
class MetricsChart:
    """What the image shows: one panel per guardrail, deploys as vertical lines, times in UTC."""

    title: str
    start: datetime
    end: datetime
    series: list[ChartSeries]
    deploys: list[DeployMark] = field(default_factory=list)


class ChartImages(Protocol):
    def render(self, chart: MetricsChart) -> bytes:
        """The chart as a PNG image."""
        ...


class FileUploads(Protocol):
    def upload(self, *, channel: str, filename: str, content: bytes, title: str, comment: str) -> str:
        """Share ``content`` in ``channel`` (Slack's files.uploadV2 flow); the file's id. Raises OpsError."""
        ...


class NoFileUploads:
    """Where nothing can take a file (unit tests on fakes): every upload is unavailable, saying so."""

    def upload(self, *, channel: str, filename: str, content: bytes, title: str, comment: str) -> str:
        raise Unavailable("no Slack workspace to share the chart in")
