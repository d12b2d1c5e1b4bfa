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
    # The severity label's values → incident severities, for the declare form: Prometheus rules say "critical" or
    # "warning" where the runbook says P0–P3. A value named here, or one that names a severity itself, is pre-selected.
    severities: dict[str, str] = Field(default_factory=lambda: {"critical": "P1", "warning": "P2", "info": "P3"})

    def incident_severity(self, label_value: str | None) -> str | None:
        """The incident severity an alert's severity label stands for (``severities``), else the value itself."""
        if label_value is None:
            return None
        return self.severities.get(label_value, self.severities.get(label_value.lower(), label_value))

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")
