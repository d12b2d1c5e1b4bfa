"""`alertmanager`: where Prometheus Alertmanager answers, for the alert buttons (silences) — docs/alerts.md.

Receiving alerts needs no config here: Alertmanager posts to `opsbot serve`'s ``POST /alertmanager`` with the
bearer token ``OPSBOT_ALERTMANAGER_TOKEN`` (an environment setting, never the config), and the messages go to
``channels.alerts``.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from bot.config.common import Strict


class Alertmanager(Strict):
    """Alertmanager's base URL (its API v2 is under ``/api/v2``) and how alerts map to opsbot's words."""

    url: str = "http://127.0.0.1:9093"
    timeout_seconds: float = Field(default=5, gt=0, le=60)  # one API call; then the clicker hears it is unreachable
    silence_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)  # what the "Silence 1h" button asks for
    service_label: str = Field(default="service", min_length=1, max_length=100)  # names the opsbot service
    environment_label: str = Field(default="environment", min_length=1, max_length=100)  # names its environment
    severity_label: str = Field(default="severity", min_length=1, max_length=100)  # a hint for the declare form

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")
