"""`pagerduty`: paging the on-call engineer through PagerDuty's Events API v2, and who is on call (REST API)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from bot.config.common import ENV_VAR, Strict

# PagerDuty's Events API v2 accepts these severities only (https://developer.pagerduty.com/docs/send-alert-event).
PD_SEVERITIES = ("critical", "error", "warning", "info")
POLICY_ID = re.compile(r"^P[A-Z0-9]{5,12}$")


class PagerDuty(Strict):
    """Where pages go and how opsbot's incident severities map to PagerDuty's."""

    routing_key_env: str = "PAGERDUTY_ROUTING_KEY"  # the Events API v2 integration key, read from this variable
    token_env: str = "PAGERDUTY_TOKEN"  # a REST API token for `/ops oncall` (read-only is enough)
    events_url: str = "https://events.pagerduty.com/v2/enqueue"
    api_url: str = "https://api.pagerduty.com"
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # opsbot severity → PagerDuty severity; severities not listed map by their rank (P0 critical … P3 info).
    severities: dict[str, str] = Field(default_factory=dict)
    # opsbot service → PagerDuty escalation policy ID: whose on-call `/ops oncall <service>` shows.
    escalation_policies: dict[str, str] = Field(default_factory=dict)

    @field_validator("routing_key_env", "token_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not ENV_VAR.match(value):
            raise ValueError(f"{value!r} is not an environment variable name")
        return value

    @field_validator("severities")
    @classmethod
    def _known(cls, value: dict[str, str]) -> dict[str, str]:
        for name, severity in value.items():
            if severity not in PD_SEVERITIES:
                raise ValueError(f"{name}: {severity!r} is not a PagerDuty severity ({', '.join(PD_SEVERITIES)})")
        return value

    @field_validator("escalation_policies")
    @classmethod
    def _policy_ids(cls, value: dict[str, str]) -> dict[str, str]:
        for service, policy in value.items():
            if not POLICY_ID.match(policy):
                raise ValueError(f"{service}: {policy!r} is not a PagerDuty escalation policy ID (like PABC123)")
        return value

    def severity_of(self, name: str, rank: int) -> str:
        """PagerDuty's severity for the opsbot severity ``name``, the ``rank``-th configured (0 = most severe)."""
        return self.severities.get(name) or PD_SEVERITIES[min(rank, len(PD_SEVERITIES) - 1)]
