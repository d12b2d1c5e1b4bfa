"""Alertmanager's alerts in Slack, against a real Alertmanager routed to opsbot's real receiver (tests/alertmanager_kit.py).

One message per alert group, edited by repeats and by the resolve; Silence 1h creates a silence Alertmanager lists;
the receiver refuses what is not Alertmanager's (401, 400, 413); Slack faults never make a twin.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from bot.config import OpsConfig
from bot.console.slack_emulator import SlackEmulator
from bot.console.slack_model import Posted
from tests.alertmanager_kit import Alertmanager, alert, alertmanager, free_port, receiver
from tests.deploy_kit import ServiceDouble, deploy_config, services_double, state_dir  # noqa: F401 - fixtures
from tests.e2e.incident_helpers import last_view
from tests.e2e.test_deploys import approval_for, posted
from tests.e2e.test_http_server import serving
from tests.servers import SharedServers
from tests.support import Bot, eventually, make_config

ALERTS = "C0ALERTS"


@pytest.fixture
def am_port() -> int:
    return free_port()


@pytest.fixture
def config(am_port: int) -> OpsConfig:
    return make_config(alertmanager={"url": f"http://127.0.0.1:{am_port}", "timeout_seconds": 2})


@pytest.fixture
def token() -> str:
    return secrets.token_hex(16)


@pytest.fixture
def served(opsbot: Bot, token: str) -> Iterator[str]:
    with receiver(opsbot, token) as base:
        yield base


@pytest.fixture
def am(servers: SharedServers, served: str, token: str, am_port: int) -> Iterator[Alertmanager]:
    with alertmanager(servers, served, token, am_port) as server:
        yield server


def alert_messages(bot: Bot) -> list[Posted]:
    return bot.emulator.in_channel(ALERTS)


def labels(message: Posted) -> list[str]:
    return [b["text"]["text"] for b in message.buttons()]


def firing_message(bot: Bot, am: Alertmanager, name: str = "HighErrorRate") -> Posted:
    am.push(alert(name, service="api", environment="production", severity="critical"))
    found = bot.emulator.wait_for(lambda: [m for m in alert_messages(bot) if name in m.text], timeout=20)
    assert len(found) == 1, [m.text for m in found]
    return found[0]


def group_of(bot: Bot, message: Posted) -> Any:
    group_id = message.buttons()[0]["value"]
    return bot.reads.alert_groups.get(group_id)


def webhook(group_key: str = '{}:{alertname="DiskFull"}', status: str = "firing") -> dict[str, Any]:
    """A body shaped like Alertmanager's (version 4), for requests that are not from Alertmanager."""
    one = {
        "status": status,
        "labels": {"alertname": "DiskFull", "service": "api", "environment": "staging"},
        "annotations": {"summary": "disk 95 % full"},
        "startsAt": "2026-11-29T20:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "",
        "fingerprint": "a1b2c3",
    }
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "opsbot",
        "groupLabels": {"alertname": "DiskFull"},
        "commonLabels": one["labels"],
        "commonAnnotations": one["annotations"],
        "externalURL": "http://alertmanager.example",
        "alerts": [one],
    }


def post(base: str, body: Any, token: str | None, raw: bytes | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(
        f"{base}/alertmanager", content=content, headers={**headers, "Content-Type": "application/json"}, timeout=10
    )


# ----- the real Alertmanager -----
def test_a_real_alertmanager_alert_becomes_one_message_that_repeats_and_the_resolve_edit(opsbot: Bot, am: Alertmanager) -> None:
    message = firing_message(opsbot, am)
    assert message.text == "🔥 HighErrorRate firing"
    assert "HighErrorRate on api" in message.seen()
    assert labels(message) == ["Declare incident", "Silence 1h", "Roll back"]
    # Alertmanager repeats the group every 2 s: the same message, never a twin.
    eventually(lambda: group_of(opsbot, message).notifications >= 3, timeout=20)
    assert len(alert_messages(opsbot)) == 1
    am.push(alert("HighErrorRate", resolved=True, service="api", environment="production", severity="critical"))
    resolved = opsbot.emulator.wait_for(lambda: [m for m in alert_messages(opsbot) if m.text.startswith("✅")], timeout=20)
    assert resolved[0].ts == message.ts and resolved[0].text == "✅ HighErrorRate resolved"
    assert resolved[0].buttons() == [] and len(alert_messages(opsbot)) == 1


def test_silence_1h_creates_a_silence_that_alertmanager_lists_and_the_message_says_who(opsbot: Bot, am: Alertmanager) -> None:
    message = firing_message(opsbot, am)
    as_first_seen = dataclasses.replace(message, blocks=copy.deepcopy(message.blocks))  # a second click on the old copy
    answer = opsbot.click(message, "Silence 1h", "U0DEV")
    assert "🔕 Silenced *HighErrorRate* in Alertmanager until" in answer[0]["text"]
    [silence] = [s for s in am.silences() if s["status"]["state"] == "active"]
    assert {m["name"]: m["value"] for m in silence["matchers"]} == {"alertname": "HighErrorRate", "service": "api"}
    assert silence["createdBy"] == "U0DEV" and "HighErrorRate" in silence["comment"]
    length = datetime.fromisoformat(silence["endsAt"]) - datetime.fromisoformat(silence["startsAt"])
    assert timedelta(minutes=59) < length <= timedelta(minutes=60, seconds=1)
    shown = opsbot.emulator.wait_for(lambda: (m := opsbot.emulator.find(message.ts)) and "Silenced by" in m.seen() and m)
    assert "🔕 Silenced by @U0DEV until" in shown.seen() and "Silence 1h" not in labels(shown)
    assert ("U0DEV", "alert.silenced", "ok") in opsbot.audit_actions()
    again = opsbot.click(as_first_seen, "Silence 1h", "U0DEV2")
    assert "already silenced" in again[0]["text"] and len([s for s in am.silences() if s["status"]["state"] == "active"]) == 1


def test_silence_is_refused_to_a_viewer_and_nothing_reaches_alertmanager(opsbot: Bot, am: Alertmanager) -> None:
    message = firing_message(opsbot, am)
    answer = opsbot.click(message, "Silence 1h", "U0VIEWER")
    assert "`alert silence` needs the *deployer* role" in answer[0]["text"]
    assert am.silences() == []
    assert ("U0VIEWER", "click.alert_silence", "denied") in opsbot.audit_actions()


def test_declare_incident_opens_the_declare_form_prefilled_from_the_alert(opsbot: Bot, am: Alertmanager) -> None:
    message = firing_message(opsbot, am)
    answer = opsbot.click(message, "Declare incident", "U0DEV")
    assert "The declare form is open." in answer[0]["text"]
    fields = {b["block_id"]: b["element"] for b in last_view(opsbot)["blocks"] if b["type"] == "input"}
    assert fields["title"]["initial_value"] == "HighErrorRate on api"
    assert fields["service"]["initial_option"]["value"] == "api"
    assert fields["impact"]["initial_value"] == "5xx above 5 %"
    assert fields["severity"]["initial_option"]["value"] == "P1"  # severity="critical", mapped by alertmanager.severities


# ----- the receiver on its own (no Alertmanager needed to send a bad request) -----
def test_a_wrong_or_missing_token_gets_401_and_nothing_is_posted(opsbot: Bot, served: str, token: str) -> None:
    for given in (None, "wrong", token + "x"):
        response = post(served, webhook(), given)
        assert response.status_code == 401 and response.json() == {"error": "missing or wrong bearer token"}
    assert alert_messages(opsbot) == []


def test_a_malformed_body_gets_400_with_the_reason_and_a_megabyte_gets_413(opsbot: Bot, served: str, token: str) -> None:
    missing = {k: v for k, v in webhook().items() if k != "groupKey"}
    assert post(served, missing, token).json() == {"error": "groupKey: Field required"}
    bad_time = webhook()
    bad_time["alerts"][0]["startsAt"] = "yesterday"
    response = post(served, bad_time, token)
    assert response.status_code == 400 and response.json()["error"].startswith(
        "alerts[0].startsAt: Input should be a valid datetime"
    )
    assert post(served, None, token, raw=b"{not json").status_code == 400
    assert post(served, {**webhook(), "version": "3"}, token).status_code == 400
    huge = post(served, None, token, raw=b"[" + b" " * 1_000_000 + b"]")
    assert huge.status_code == 413 and "over 524288 bytes" in huge.json()["error"]
    assert alert_messages(opsbot) == []


def test_without_a_token_configured_the_endpoint_answers_503_and_says_why(opsbot: Bot) -> None:
    with receiver(opsbot, None) as base:
        response = post(base, webhook(), "anything")
    assert response.status_code == 503 and "OPSBOT_ALERTMANAGER_TOKEN is not set" in response.json()["error"]
    assert alert_messages(opsbot) == []


def test_the_same_notification_twice_is_one_message(opsbot: Bot, served: str, token: str) -> None:
    first, second = post(served, webhook(), token), post(served, webhook(), token)
    assert first.json()["message"] == "posted" and second.json()["message"] == "unchanged"
    assert first.json()["group"] == second.json()["group"]
    assert [m.text for m in alert_messages(opsbot)] == ["🔥 DiskFull firing"]
    received = [a for a in opsbot.audit_actions() if a[1] == "alert.received"]
    assert received == [("alertmanager", "alert.received", "posted"), ("alertmanager", "alert.received", "unchanged")]


def test_silence_with_alertmanager_unreachable_says_so_briefly_and_is_audited(opsbot: Bot, served: str, token: str) -> None:
    post(served, webhook(), token)  # config's alertmanager.url points at a port nothing listens on
    message = opsbot.emulator.wait_for(lambda: alert_messages(opsbot))[0]
    answer = opsbot.click(message, "Silence 1h", "U0DEV")
    assert "Alertmanager is unreachable right now; nothing was changed." in answer[0]["text"]
    assert ("U0DEV", "click.alert_silence", "unavailable") in opsbot.audit_actions()
    assert "Silence 1h" in labels(opsbot.emulator.find(message.ts))


# ----- Slack faults through the outbox -----
def test_a_slack_429_delays_the_post_and_never_makes_a_twin(opsbot: Bot, served: str, token: str) -> None:
    opsbot.emulator.fail("chat.postMessage", "ratelimited", status=429, retry_after=1)
    response = post(served, webhook(), token)
    assert response.status_code == 200 and response.json()["waiting"], response.json()
    assert post(served, webhook(), token).json()["message"] == "unchanged"  # the repeat while the post waits
    eventually(lambda: opsbot.services.delivery.drain() >= 0 and alert_messages(opsbot), timeout=15)
    assert [m.text for m in alert_messages(opsbot)] == ["🔥 DiskFull firing"]


def test_a_post_whose_answer_was_lost_is_found_again_not_posted_twice(opsbot: Bot, served: str, token: str) -> None:
    opsbot.emulator.fail_connection("chat.postMessage", after=True)  # Slack posted it; the answer never came
    assert post(served, webhook(), token).status_code == 200
    resolved = webhook(status="resolved")
    resolved["alerts"][0]["status"] = "resolved"
    resolved["alerts"][0]["endsAt"] = "2026-11-29T20:10:00Z"
    assert post(served, resolved, token).status_code == 200
    eventually(
        lambda: opsbot.services.delivery.drain() >= 0 and any(m.text.startswith("✅") for m in alert_messages(opsbot)), timeout=20
    )
    assert [m.text for m in alert_messages(opsbot)] == ["✅ DiskFull resolved"]


# ----- Roll back: the deploys family's rollback request for the alert's service and environment -----
@pytest.fixture
def deploy_app(
    emulator: SlackEmulator,
    pg_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    state_dir: Path,
    services_double: ServiceDouble,
) -> Bot:
    config = deploy_config(state_dir, services_double.base_url, production={"lock_after_rollback": False})
    return Bot(emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=config)


def test_roll_back_asks_for_the_rollback_of_the_alerts_service_in_its_environment(deploy_app: Bot, token: str) -> None:
    app = deploy_app
    for version in ("v1.2.2", "v1.2.3"):
        app.command(f'deploy {version} to production --reason "release {version}"', user="U0DEV")
        request = approval_for(app, f"Deploy {version} of api to production")
        app.click(request, "Approve", "U0APPROVER1")
        app.click(request, "Approve", "U0APPROVER2")
        posted(app, f"Deployment of {version} to production completed")
        app.services.local_worker.wait_idle()  # type: ignore[attr-defined]
    body = webhook('{}:{alertname="HighLatency"}')
    body["alerts"][0]["labels"] = body["commonLabels"] = {
        "alertname": "HighLatency",
        "service": "api",
        "environment": "production",
    }
    body["groupLabels"] = {"alertname": "HighLatency"}
    with receiver(app, token) as base:
        assert post(base, body, token).status_code == 200
    message = app.emulator.wait_for(lambda: alert_messages(app))[0]
    refused = app.click(message, "Roll back", "U0VIEWER")
    assert "`rollback` needs the *deployer* role" in refused[0]["text"]
    reply = app.click(message, "Roll back", "U0DEV2")
    assert "Roll back api to v1.2.2 in production" in reply[-1]["text"] and "waiting for 1 approval" in reply[-1]["text"]
    assert "Alertmanager: HighLatency firing" in approval_for(app, "Roll back api to v1.2.2 in production").seen()
    assert ("U0DEV2", "click.alert_roll_back", "requested") in app.audit_actions()


def test_labels_and_annotations_are_shown_as_text_and_notify_nobody(opsbot: Bot, served: str, token: str) -> None:
    body = webhook()
    hostile = '<!channel> *boom* `x` <javascript:alert(1)|click> & "quoted" \\ {{ 7*7 }}'
    body["commonAnnotations"] = body["alerts"][0]["annotations"] = {"summary": hostile}
    body["groupLabels"] = {"alertname": "DiskFull", "team": "<!here>"}
    assert post(served, body, token).status_code == 200
    [message] = opsbot.emulator.wait_for(lambda: alert_messages(opsbot))
    raw = json.dumps(message.blocks)
    assert "<!channel>" not in raw and "<!here>" not in raw and "<javascript:" not in raw
    assert "{{ 7*7 }}" in message.seen() and "@channel" in message.seen()


def test_concurrent_first_notifications_of_one_group_make_one_message(opsbot: Bot, served: str, token: str) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: post(served, webhook(), token), range(8)))
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["group"] for a in answers}) == 1
    assert [a.json()["message"] for a in answers].count("posted") == 1
    assert [m.text for m in alert_messages(opsbot)] == ["🔥 DiskFull firing"]


def test_opsbot_serve_takes_the_token_from_its_environment_and_a_real_alertmanager_reaches_it(
    opsbot: Bot, servers: SharedServers, token: str, am_port: int, tmp_path: Path, redis_url: str
) -> None:
    with (
        serving(opsbot, tmp_path, REDIS_URL=redis_url, OPSBOT_ALERTMANAGER_TOKEN=token) as base,
        alertmanager(servers, base, token, am_port) as am,
    ):
        assert post(base, webhook(), "wrong").status_code == 401
        message = firing_message(opsbot, am)
        assert labels(message) == ["Declare incident", "Silence 1h", "Roll back"]


def test_on_sqlite_too_a_group_is_one_message_posted_then_resolved_in_place(
    emulator: SlackEmulator, sqlite_url: str, redis_client: redis.Redis, redis_prefix: str, config: OpsConfig, token: str
) -> None:
    bot = Bot(emulator=emulator, db_url=sqlite_url, redis_client=redis_client, prefix=redis_prefix, config=config)
    resolved = webhook(status="resolved")
    resolved["alerts"][0].update(status="resolved", endsAt="2026-11-29T20:10:00Z")
    with receiver(bot, token) as base:
        answers = [post(base, body, token).json()["message"] for body in (webhook(), webhook(), resolved)]
    assert answers == ["posted", "unchanged", "updated"]
    [message] = bot.emulator.wait_for(lambda: alert_messages(bot))
    assert message.text == "✅ DiskFull resolved" and message.edits == 1
