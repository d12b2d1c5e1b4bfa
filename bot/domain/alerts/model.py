"""Alert groups as Alertmanager sends them (webhook version 4), and how a notification changes the one opsbot keeps.

Alertmanager groups alerts by its route's ``group_by`` labels and names each group with ``groupKey``; it sends
the whole group again on every change, every ``repeat_interval`` while it fires, and once more when every alert
in it resolved (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config). opsbot keeps one
``AlertGroup`` per ``groupKey`` and one Slack message per firing episode of it: repeats and the resolve edit that
message; the group firing again after it resolved starts a new episode, so a new message.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any


class GroupStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Alert:
    """One alert of a group: its labels identify it (``fingerprint`` is their hash, Alertmanager's)."""

    status: GroupStatus
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None  # None while it fires with no end known (Alertmanager sends 0001-01-01)
    fingerprint: str
    generator_url: str = ""


@dataclass(frozen=True)
class Notification:
    """One webhook body from Alertmanager, checked at the edge (``bot.alertmanager_receiver``)."""

    receiver: str
    status: GroupStatus
    group_key: str
    group_labels: dict[str, str]
    common_labels: dict[str, str]
    common_annotations: dict[str, str]
    external_url: str
    alerts: tuple[Alert, ...]
    truncated_alerts: int = 0  # alerts Alertmanager left out (the receiver's max_alerts)


@dataclass(frozen=True)
class Silence:
    """A silence opsbot created for a group through Alertmanager's API."""

    id: str
    by: str  # Slack user ID
    until: datetime


@dataclass(frozen=True)
class AlertGroup:
    """The group as last notified, and what opsbot did with it."""

    id: str  # opaque, what buttons carry: "ag-<hex>"
    group_key: str
    receiver: str
    status: GroupStatus
    group_labels: dict[str, str]
    common_labels: dict[str, str]
    common_annotations: dict[str, str]
    external_url: str
    alerts: tuple[Alert, ...]
    truncated_alerts: int
    first_seen_at: datetime
    updated_at: datetime
    episode: int = 1  # how many times it started firing; each episode is one Slack message
    notifications: int = 1  # in this episode
    silence: Silence | None = None
    resolved_at: datetime | None = None

    @property
    def message_key(self) -> str:
        """The outbox key of this episode's Slack message: delivering it again edits the same message."""
        return f"alert-group:{self.id}:{self.episode}"

    @property
    def origin(self) -> str:
        return f"alert group {self.id}"

    @property
    def name(self) -> str:
        """``alertname`` when the group has one, else its labels in a line."""
        labels = {**self.common_labels, **self.group_labels}
        return labels.get("alertname") or ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "alert"

    @property
    def firing(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.status is GroupStatus.FIRING)

    def label(self, name: str) -> str | None:
        """A label every alert of the group shares (``commonLabels``), or None."""
        value = self.common_labels.get(name) or self.group_labels.get(name)
        return value or None

    def annotation(self, name: str) -> str:
        """A shared annotation, else the first alert's."""
        if self.common_annotations.get(name):
            return self.common_annotations[name]
        return next((a.annotations[name] for a in self.alerts if a.annotations.get(name)), "")

    def matchers(self) -> dict[str, str]:
        """The labels a silence of this group matches: its ``groupLabels`` (the route's group_by), else the shared ones."""
        return dict(self.group_labels or self.common_labels)


@dataclass(frozen=True)
class Received:
    """What a notification did: the group as it is now, and whether it opened a new message."""

    group: AlertGroup
    new_message: bool
    changed: bool = True
    pending: list[str] = field(default_factory=list)  # what still waits for delivery, in words


def _as_sent(n: Notification) -> dict[str, Any]:
    """What a group takes over from each notification of it, as Alertmanager sent it."""
    return {
        "receiver": n.receiver,
        "status": n.status,
        "group_labels": n.group_labels,
        "common_labels": n.common_labels,
        "common_annotations": n.common_annotations,
        "external_url": n.external_url,
        "alerts": n.alerts,
        "truncated_alerts": n.truncated_alerts,
    }


def new_group(group_id: str, notification: Notification, now: datetime) -> AlertGroup:
    n = notification
    return AlertGroup(
        id=group_id,
        group_key=n.group_key,
        **_as_sent(n),
        first_seen_at=now,
        updated_at=now,
        resolved_at=now if n.status is GroupStatus.RESOLVED else None,
    )


def apply(group: AlertGroup, notification: Notification, now: datetime) -> tuple[AlertGroup, bool]:
    """The group after ``notification``, and whether it starts a new episode (a new Slack message).

    A firing notification for a group that had resolved starts a new episode; its silence is kept only while it lasts.
    """
    n = notification
    again = group.status is GroupStatus.RESOLVED and n.status is GroupStatus.FIRING
    silence = group.silence if group.silence is not None and group.silence.until > now else None
    updated = replace(
        group,
        **_as_sent(n),
        updated_at=now,
        episode=group.episode + 1 if again else group.episode,
        notifications=1 if again else group.notifications + 1,
        silence=silence,
        resolved_at=(group.resolved_at or now) if n.status is GroupStatus.RESOLVED else None,
    )
    return updated, again
