"""Alert groups: how Alertmanager's notifications change the one opsbot keeps (episodes, resolves, silences)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.alertmanager_receiver import Webhook
from bot.domain.alerts.model import Alert, GroupStatus, Notification, Silence, apply, new_group

T0 = datetime(2026, 11, 29, 20, 0, tzinfo=UTC)


def notification(status: GroupStatus = GroupStatus.FIRING, **group_labels: str) -> Notification:
    one = Alert(status, {"alertname": "HighErrorRate", "service": "api"}, {"summary": "5xx"}, T0, None, "f1")
    return Notification(
        receiver="opsbot",
        status=status,
        group_key='{}:{alertname="HighErrorRate"}',
        group_labels=group_labels,
        common_labels={"alertname": "HighErrorRate", "service": "api"},
        common_annotations={"summary": "5xx"},
        external_url="",
        alerts=(one,),
    )


def test_a_repeat_keeps_the_message_and_counts_the_notification() -> None:
    group = new_group("ag-1", notification(), T0)
    repeated, again = apply(group, notification(), T0 + timedelta(minutes=5))
    assert not again and repeated.message_key == group.message_key == "alert-group:ag-1:1"
    assert repeated.notifications == 2


def test_the_resolve_keeps_the_message_and_notes_when_it_resolved_first() -> None:
    group = new_group("ag-1", notification(), T0)
    resolved, again = apply(group, notification(GroupStatus.RESOLVED), T0 + timedelta(minutes=1))
    resolved_again, _ = apply(resolved, notification(GroupStatus.RESOLVED), T0 + timedelta(minutes=2))
    assert not again and resolved_again.message_key == group.message_key
    assert resolved_again.resolved_at == T0 + timedelta(minutes=1)


def test_firing_again_after_the_resolve_is_a_new_episode_with_a_new_message() -> None:
    group = new_group("ag-1", notification(), T0)
    resolved, _ = apply(group, notification(GroupStatus.RESOLVED), T0 + timedelta(minutes=1))
    refired, again = apply(resolved, notification(), T0 + timedelta(minutes=30))
    assert again and refired.message_key == "alert-group:ag-1:2"
    assert refired.notifications == 1 and refired.resolved_at is None


def test_a_silence_is_kept_while_it_lasts_and_dropped_after() -> None:
    silenced = replace(new_group("ag-1", notification(), T0), silence=Silence("s-1", "U0DEV", T0 + timedelta(hours=1)))
    assert apply(silenced, notification(), T0 + timedelta(minutes=59))[0].silence is not None
    assert apply(silenced, notification(), T0 + timedelta(minutes=61))[0].silence is None


def test_a_silence_matches_the_group_labels_else_the_common_ones() -> None:
    assert new_group("ag-1", notification(alertname="HighErrorRate"), T0).matchers() == {"alertname": "HighErrorRate"}
    assert new_group("ag-1", notification(), T0).matchers() == {"alertname": "HighErrorRate", "service": "api"}


def test_alertmanagers_zero_end_time_reads_as_no_end() -> None:
    body = {
        "version": "4",
        "groupKey": "{}:{}",
        "status": "firing",
        "receiver": "opsbot",
        "groupLabels": {},
        "commonLabels": {"alertname": "A"},
        "commonAnnotations": {},
        "externalURL": "http://am:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "A"},
                "annotations": {},
                "startsAt": "2026-11-29T20:00:00.123456789Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "",
                "fingerprint": "abc",
            }
        ],
    }
    [alert] = Webhook.model_validate_json(json.dumps(body)).notification().alerts
    assert alert.ends_at is None and alert.starts_at.year == 2026
