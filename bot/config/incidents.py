"""`incidents`: severities, cadences, escalation and the incident channels."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from bot.config.common import Principals, Strict, _people


class EscalationStep(Strict):
    """Who is paged, how long after the declaration, while nobody has acknowledged the incident."""

    after_minutes: int = Field(ge=0, le=7 * 24 * 60)
    notify: Principals
    label: str = Field(default="", max_length=60)
    page: bool = False  # also (or, with no one to notify, instead) page PagerDuty's on-call at this step

    @field_validator("notify")
    @classmethod
    def _check(cls, value: list[str]) -> list[str]:
        return _people(value)


class Severity(Strict):
    update_every_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)
    page: bool = False  # trigger a PagerDuty page when declared (needs `pagerduty`)
    responders: Principals = Field(default_factory=list)
    # None: follow incidents.escalation; an empty list turns escalation off for this severity.
    escalation: list[EscalationStep] | None = None

    @field_validator("responders")
    @classmethod
    def _check(cls, value: list[str]) -> list[str]:
        return _people(value)


def _default_severities() -> dict[str, Severity]:
    return {
        "P0": Severity(update_every_minutes=30),
        "P1": Severity(update_every_minutes=60),
        "P2": Severity(update_every_minutes=240, escalation=[]),
        "P3": Severity(update_every_minutes=None, escalation=[]),
    }


def _runbook_escalation() -> list[EscalationStep]:
    # The runbook's path; nobody is named by default, so nothing is paged until an operator says who.
    return [
        EscalationStep(after_minutes=0, notify=[], label="on-call"),
        EscalationStep(after_minutes=15, notify=[], label="team lead"),
        EscalationStep(after_minutes=30, notify=[], label="engineering manager"),
        EscalationStep(after_minutes=60, notify=[], label="CTO"),
    ]


class Incidents(Strict):
    severities: dict[str, Severity] = Field(default_factory=_default_severities, min_length=1)
    escalation: list[EscalationStep] = Field(default_factory=_runbook_escalation)
    timeline_reaction: str = Field(default="pushpin", pattern=r"^[a-z0-9_+'-]{1,100}$")
    channel_prefix: str = Field(default="inc", pattern=r"^[a-z0-9_-]{1,20}$")
    snooze_minutes: int = Field(default=15, ge=1, le=24 * 60)
    freeze_hours: int = Field(default=72, ge=1, le=30 * 24)
    # "What changed" on a declaration and a health DOWN alert: the declared services' deploys, rollbacks and flag
    # changes of this many hours (fractions allowed: 0.01 is 36 seconds, for tests).
    what_changed_hours: float = Field(default=24, gt=0, le=30 * 24)

    @field_validator("severities")
    @classmethod
    def _severity_names(cls, value: dict[str, Severity]) -> dict[str, Severity]:
        for name in value:
            if not re.match(r"^[A-Za-z0-9]{1,10}$", name):
                raise ValueError(f"{name!r} is not a severity name (letters and digits, like P1)")
        if len({name.lower() for name in value}) != len(value):
            raise ValueError("severity names must differ by more than case")
        return value

    def severity(self, name: str) -> tuple[str, Severity] | None:
        """The configured severity called ``name`` (any case)."""
        for key, severity in self.severities.items():
            if key.lower() == name.lower():
                return key, severity
        return None

    def escalation_for(self, severity: Severity) -> list[EscalationStep]:
        return self.escalation if severity.escalation is None else severity.escalation
