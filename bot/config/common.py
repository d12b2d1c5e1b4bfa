"""Shared pieces of the ops config: the strict base model, ID patterns, channels, roles, environments."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from bot.config.freeze_windows import FreezeWindow

PRINCIPAL = re.compile(r"^(\*|[UW][A-Z0-9]{2,}|S[A-Z0-9]{2,})$")
CHANNEL = re.compile(r"^[CGD][A-Z0-9]{2,}$")
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
VERSION_PATTERNS = {
    "semver": r"^v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$",
    "git_sha": r"^[0-9a-f]{7,40}$",
    "any": r"^[A-Za-z0-9][A-Za-z0-9._/+-]{0,127}$",
}


class Strict(BaseModel):
    """Unknown keys are errors: a typo in a runbook config must not pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _principals(values: list[str]) -> list[str]:
    for value in values:
        if not PRINCIPAL.match(value):
            raise ValueError(f'{value!r} is not a Slack user ID (U…/W…), user-group ID (S…) or "*"')
    return values


def _people(values: list[str]) -> list[str]:
    """Principals who are paged or invited: "*" (everyone) is never meant there."""
    if "*" in values:
        raise ValueError('"*" would invite or page everyone; name users (U…) or user groups (S…)')
    return _principals(values)


Principals = Annotated[list[str], Field(default_factory=list)]


class Channels(Strict):
    deployments: str
    incidents: str
    alerts: str
    audit: str | None = None  # where the audit chain's head is published (docs: README, "Audit log")

    @field_validator("deployments", "incidents", "alerts", "audit")
    @classmethod
    def _channel_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not CHANNEL.match(value):
            raise ValueError(f"{value!r} is not a Slack channel ID (C…, G… or D…)")
        return value


class Roles(Strict):
    admin: Principals
    approver: Principals
    deployer: Principals
    viewer: list[str] = Field(default_factory=lambda: ["*"])

    @field_validator("admin", "approver", "deployer", "viewer")
    @classmethod
    def _check(cls, value: list[str]) -> list[str]:
        return _principals(value)


class EnvironmentRoles(Strict):
    """Roles an environment sets itself: each list given replaces the global one there (narrowing or widening it) for
    deploys, rollbacks, locks, flag changes, freezes and approvals of that environment. ``viewer`` stays global."""

    admin: list[str] | None = None
    approver: list[str] | None = None
    deployer: list[str] | None = None

    @field_validator("admin", "approver", "deployer")
    @classmethod
    def _check(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _principals(value)

    def given(self) -> dict[str, list[str]]:
        """The roles this environment sets, by name."""
        return {name: list(value) for name, value in self.model_dump().items() if value is not None}


# Slack's checkboxes element takes at most 10 options, and an option's text at most 75 characters
# (https://docs.slack.dev/reference/block-kit/block-elements/checkboxes-element,
# https://docs.slack.dev/reference/block-kit/composition-objects/option-object). bot.slack_limits states the same
# numbers for the renderer; config may not import it (independent layers), a unit test keeps the two equal.
CHECKLIST_ITEMS_MAX = 10
CHECKLIST_ITEM_TEXT_MAX = 75
CHECKLIST_GATES = ("ci", "promotion")  # the gates that may tick an item for everyone


class ChecklistItem(Strict):
    """One line of ``environments.<env>.checklist``: its text, and the gate that ticks it for everyone when it passes
    (``promotion``: the promotion gate, ``ci``: the CI gate). A plain string is an item people tick."""

    item: str
    satisfied_by: Literal["ci", "promotion"] | None = None

    @field_validator("satisfied_by", mode="before")
    @classmethod
    def _gate(cls, value: Any) -> Any:
        if value is not None and value not in CHECKLIST_GATES:
            raise ValueError(f"unknown gate {str(value)[:40]!r} (known: {', '.join(CHECKLIST_GATES)})")
        return value

    @field_validator("item")
    @classmethod
    def _text(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("an empty checklist item; write what the approver confirms")
        if len(value) > CHECKLIST_ITEM_TEXT_MAX:
            raise ValueError(
                f"{len(value)} characters; Slack shows a checkbox's text up to {CHECKLIST_ITEM_TEXT_MAX} characters, say it shorter"
            )
        return value


class Environment(Strict):
    approvals: int = Field(default=0, ge=0, le=10)
    roles: EnvironmentRoles = Field(default_factory=EnvironmentRoles)
    rollback_approvals: int | None = Field(default=None, ge=0, le=10)
    approval_timeout_minutes: int = Field(default=30, ge=1, le=24 * 60)
    freeze_windows: list[FreezeWindow] = Field(default_factory=list)
    lock_after_rollback: bool = False
    # The promotion gate (docs/deploys.md): a deploy here needs the same version to have succeeded (deployed and
    # verified) in this environment first; `--hotfix` passes it with an admin's approval on top.
    requires_verified_in: str | None = None
    auto_rollback: bool = False  # a critical metric guardrail breach opens the rollback at once (docs/metrics.md)
    on_unknown: Literal["warn", "fail"] = "warn"  # a guardrail that cannot be read: noted, or fails verification
    # What each approver ticks before their Approve counts, on deploy requests here (docs/deploys.md, "Checklist").
    checklist: list[ChecklistItem] = Field(default_factory=list)

    @field_validator("checklist", mode="before")
    @classmethod
    def _checklist_items(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"item": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("checklist")
    @classmethod
    def _checklist(cls, items: list[ChecklistItem]) -> list[ChecklistItem]:
        if len(items) > CHECKLIST_ITEMS_MAX:
            raise ValueError(
                f"{len(items)} items; Slack shows at most {CHECKLIST_ITEMS_MAX} checkboxes in one group, keep the essential ones"
            )
        seen: set[str] = set()
        for item in items:
            if item.item.casefold() in seen:
                raise ValueError(f"{item.item!r} is listed twice")
            seen.add(item.item.casefold())
        return items

    @field_validator("freeze_windows", mode="before")
    @classmethod
    def _parse_windows(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [FreezeWindow.parse(item) if isinstance(item, str) else item for item in value]
        return value

    @field_serializer("freeze_windows")
    def _window_texts(self, windows: list[FreezeWindow]) -> list[str]:
        return [window.text for window in windows]


HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}$")
ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class AuditSettings(Strict):
    """The audit log's anchoring: how often the reconciler publishes the chain's head to `channels.audit`."""

    anchor_every_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
