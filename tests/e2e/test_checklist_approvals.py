"""The checklist on approval requests (`environments.production.checklist`, issue 15 §3) through signed Slack requests:
each approver ticks every item for themselves before their Approve counts; opsbot ticks the item bound to the promotion
gate for everyone and says how; ticks are recorded per approver, re-checked on the server and audited."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import redis

from bot.config import OpsConfig, parse_config
from bot.console import payloads
from bot.console.slack_emulator import Posted, SlackEmulator
from tests.deploy_kit import (  # noqa: F401 - fixtures
    RecordedEvents,
    ServiceDouble,
    deploy_config_data,
    deployed_log,
    services_double,
    state_dir,
)
from tests.e2e.test_app_home import home_after, open_home
from tests.support import Bot

DEPLOYS = "C0DEPLOYS"
TITLE = "Deploy v1.2.3 of api to production"
ITEMS = ["Database migrations tested", "Rollback plan documented", "Backup created"]
CHECKLIST = [*ITEMS, {"item": "Staging deployment successful", "satisfied_by": "promotion"}]


@pytest.fixture
def config(state_dir: Path, services_double: ServiceDouble) -> OpsConfig:
    production = {"requires_verified_in": "staging", "checklist": CHECKLIST}
    return parse_config(deploy_config_data(state_dir, services_double.base_url, production=production), "test")


@pytest.fixture
def app(emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str, config: OpsConfig) -> Bot:
    return Bot(
        emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=config, events=RecordedEvents()
    )


def posted(app: Bot, text: str, timeout: float = 10.0) -> Posted:
    return app.emulator.wait_for(
        lambda: next((m for m in reversed(app.emulator.in_channel(DEPLOYS)) if text in m.seen()), None), timeout
    )


@pytest.fixture
def request_message(app: Bot) -> Posted:
    """v1.2.3 verified in staging, then requested for production: the approval request as posted."""
    app.command("deploy v1.2.3 api to staging")
    posted(app, "✅ Deployment of v1.2.3 to staging completed")
    app.command('deploy v1.2.3 api to production --reason "release 42"')
    return posted(app, f"Approval needed: {TITLE}")


def now_seen(app: Bot, message: Posted) -> Posted:
    """``message`` as it is now in the channel (after its edits)."""
    current = app.emulator.find(message.ts)
    assert current is not None
    return current


def checkboxes(message: Posted) -> list[str]:
    return [
        option["text"]["text"]
        for block in message.blocks
        for element in block.get("elements") or []
        if element.get("type") == "checkboxes"
        for option in element["options"]
    ]


def request_id(message: Posted) -> str:
    return str(next(b["value"] for b in message.buttons() if b["text"]["text"] == "Approve"))


def votes(app: Bot, message: Posted) -> list[str]:
    found = app.reads.approvals.get(request_id(message))  # type: ignore[union-attr]
    return [v.voter for v in found[1]]


def audit_rows(app: Bot, prefix: str) -> list[dict[str, Any]]:
    rows = [dict(r) for r in app.services.adapters.audit.rows() if str(r["action"]).startswith(prefix)]  # type: ignore[attr-defined]
    for row in rows:
        row["params"] = json.loads(row["params"]) if isinstance(row["params"], str) else row["params"]
    return rows


def tick_all(app: Bot, message: Posted, user: str) -> None:
    for item in ITEMS:
        app.tick(now_seen(app, message), item, user)


def test_the_request_shows_a_checkbox_per_item_and_opsbot_ticks_the_staging_item_saying_how(
    app: Bot, request_message: Posted
) -> None:
    assert checkboxes(request_message) == ITEMS  # the gate's item is ticked already: no box to tick
    (staging,) = app.reads.deploys.history("api", "staging", 5)  # type: ignore[union-attr]
    seen = request_message.seen()
    assert (
        f"✅ Staging deployment successful — ticked by opsbot: v1.2.3 succeeded in staging at "
        f"{staging.finished_at:%Y-%m-%d %H:%M} UTC ({staging.id})"
    ) in seen
    assert "Checklist: nobody has ticked it yet" in seen and "0 of 2" in seen
    assert "deploy/api/production (held by this request)" in seen  # while it waits, the lock is its own
    block = next(b for b in request_message.blocks if any(e.get("type") == "checkboxes" for e in b.get("elements") or []))
    assert block["block_id"] == f"checklist-{request_id(request_message)}"  # the opaque request id, nothing else
    assert {o["value"] for e in block["elements"] for o in e["options"]} == {request_id(request_message)}


def test_an_approve_with_no_or_partial_ticks_is_refused_and_not_counted(app: Bot, request_message: Posted) -> None:
    (refusal,) = app.click(request_message, "Approve", "U0APPROVER1")
    assert refusal["response_type"] == "ephemeral"
    assert (
        "Tick every checklist item before approving: Database migrations tested, Rollback plan documented and "
        "Backup created are not ticked."
    ) in refusal["text"]

    app.tick(request_message, "Database migrations tested", "U0APPROVER1")
    app.tick(now_seen(app, request_message), "Rollback plan documented", "U0APPROVER1")
    answers = app.click(now_seen(app, request_message), "Approve", "U0APPROVER1")
    assert "Tick every checklist item before approving: Backup created is not ticked." in answers[-1]["text"]

    assert votes(app, request_message) == []
    seen = now_seen(app, request_message).seen()
    assert "Approval needed" in seen and "0 of 2" in seen and "Approved by" not in seen
    assert [o for a, action, o in app.audit_actions() if action == "click.approve"] == ["denied", "denied"]


def test_after_ticking_every_item_the_vote_counts_and_ticks_are_per_approver(
    app: Bot, request_message: Posted, state_dir: Path
) -> None:
    tick_all(app, request_message, "U0APPROVER1")
    app.tick(now_seen(app, request_message), "Backup created", "U0APPROVER2")
    seen = now_seen(app, request_message).seen()
    assert "Checklist: @U0APPROVER1 4 of 4 ✅ · @U0APPROVER2 2 of 4" in seen

    # one approver's ticks do not let another approve
    (refusal,) = app.click(now_seen(app, request_message), "Approve", "U0APPROVER2")
    assert "Database migrations tested and Rollback plan documented are not ticked" in refusal["text"]
    (receipt,) = app.click(now_seen(app, request_message), "Approve", "U0APPROVER1")
    assert "✅ You approved *Deploy v1.2.3 of api to production*: 1 of 2." in receipt["text"]
    assert votes(app, request_message) == ["U0APPROVER1"]

    tick_all(app, request_message, "U0APPROVER2")
    app.click(now_seen(app, request_message), "Approve", "U0APPROVER2")
    posted(app, "✅ Deployment of v1.2.3 to production completed")
    assert [line.split()[:3] for line in deployed_log(state_dir)][-1] == ["api", "production", "v1.2.3"]
    decided = now_seen(app, request_message)
    assert checkboxes(decided) == []  # decided: nothing left to tick
    assert "held by this request" not in decided.seen()  # the lock line goes once the request is decided
    assert "Checklist: @U0APPROVER1 4 of 4 ✅ · @U0APPROVER2 4 of 4 ✅" in decided.seen()


def test_each_tick_is_answered_to_the_clicker_and_audited_and_an_untick_too(app: Bot, request_message: Posted) -> None:
    (answer,) = app.tick(request_message, "Backup created", "U0APPROVER1")
    assert answer["response_type"] == "ephemeral"
    assert "You ticked *Backup created*" in answer["text"]
    assert "Still to tick before your Approve counts: Database migrations tested, Rollback plan documented." in answer["text"]
    (answer,) = app.tick(now_seen(app, request_message), "Backup created", "U0APPROVER1", ticked=False)
    assert "You unticked *Backup created*" in answer["text"]

    rows = audit_rows(app, "approval.checklist")
    assert [(r["actor"], r["action"], r["params"]["item"]) for r in rows] == [
        ("U0APPROVER1", "approval.checklist_ticked", "Backup created"),
        ("U0APPROVER1", "approval.checklist_unticked", "Backup created"),
    ]
    assert rows[0]["environment"] == "production" and rows[0]["params"]["still_to_tick"] == 2
    assert [o for _, action, o in app.audit_actions() if action == "click.checklist"] == ["ticked", "unticked"]


def test_the_same_tick_delivered_twice_is_recorded_once(app: Bot, request_message: Posted) -> None:
    element = next(
        {**e, "block_id": b["block_id"], "selected_options": e["options"]}
        for b in request_message.blocks
        for e in b.get("elements") or []
        if e.get("type") == "checkboxes" and e["options"][0]["text"]["text"] == "Backup created"
    )
    url = app.emulator.response_url(DEPLOYS, "U0APPROVER1", request_message.ts)
    body = payloads.block_action(
        user_id="U0APPROVER1", channel_id=DEPLOYS, message_ts=request_message.ts, action=element, response_url=url
    )
    assert app.dispatch(body).status == 200
    assert app.dispatch(body).status == 200  # Slack's retry, or a double delivery: the very same payload
    answers = app.emulator.wait_for(lambda: (r := app.emulator.responses(url)) and len(r) >= 2 and r, 5)
    texts = sorted(Posted("", "", str(a.args["text"]), list(a.args.get("blocks") or [])).seen() for a in answers)
    assert "You had already ticked *Backup created*" in texts[0] and "You ticked *Backup created*" in texts[1]
    assert len(audit_rows(app, "approval.checklist_ticked")) == 1
    found = app.reads.approvals.ticks(request_id(request_message))  # type: ignore[union-attr]
    assert [(t.voter, t.item) for t in found] == [("U0APPROVER1", 2)]


def test_someone_who_may_not_vote_cannot_tick(app: Bot, request_message: Posted) -> None:
    (refusal,) = app.tick(request_message, "Backup created", "U0DEV2")
    assert refusal["response_type"] == "ephemeral"
    assert "needs the *approver* role in production" in refusal["text"]
    assert app.reads.approvals.ticks(request_id(request_message)) == []  # type: ignore[union-attr]
    assert audit_rows(app, "approval.checklist") == []
    assert ("U0DEV2", "click.checklist", "denied") in app.audit_actions()
    assert "nobody has ticked it yet" in now_seen(app, request_message).seen()


def test_a_tick_carried_by_another_message_is_not_counted(app: Bot, request_message: Posted) -> None:
    forged = dataclasses.replace(request_message, ts="1.000001")  # this request's checkbox, copied onto another message
    answers = app.tick(forged, "Backup created", "U0APPROVER1")
    assert "it was not counted" in answers[-1]["text"]
    assert app.reads.approvals.ticks(request_id(request_message)) == []  # type: ignore[union-attr]


def test_a_hotfix_past_the_gate_leaves_the_staging_item_for_people_to_tick(app: Bot) -> None:
    app.command('deploy v1.2.9 api to production --hotfix --reason "checkout down"')
    request = posted(app, "Approval needed: ⚠️ HOTFIX")
    assert checkboxes(request) == [*ITEMS, "Staging deployment successful"]
    assert "ticked by opsbot" not in request.seen()


def test_home_links_to_the_request_instead_of_offering_approve(app: Bot, request_message: Posted) -> None:
    assert open_home(app, "U0APPROVER1") == 200
    home = home_after(app, "U0APPROVER1", 1)
    seen = home.seen()
    assert TITLE in seen
    assert "Checklist of 4 items (opsbot ticks 1): tick them and approve on the request's message in" in seen
    assert "Approve" not in [b["text"]["text"] for b in home.buttons()]
    assert [b["text"]["text"] for b in home.buttons()] == ["Reject"]
    ts = request_message.ts.replace(".", "")
    assert f"https://slack.com/archives/{DEPLOYS}/p{ts}" in json.dumps(app.emulator.homes["U0APPROVER1"]["blocks"])


def test_the_dry_run_shows_the_checklist_approvers_would_tick(app: Bot) -> None:
    seen = app.command("deploy v1.2.3 api to production --dry-run").seen()
    assert "*Checklist*\nEach approver would tick these before their Approve counts:\n☐ Database migrations tested" in seen
    assert "☐ Staging deployment successful" in seen  # not verified in staging: nobody ticks it for them
    assert "Checklist" not in app.command("deploy v1.2.3 api to staging --dry-run").seen()


def test_the_requester_cannot_tick_the_checklist_of_their_own_request(app: Bot) -> None:
    app.command("deploy v1.2.3 api to staging")
    posted(app, "✅ Deployment of v1.2.3 to staging completed")
    app.command('deploy v1.2.3 api to production --reason "release 42"', user="U0APPROVER1")  # an approver asks
    request = posted(app, f"Approval needed: {TITLE}")
    (refused,) = app.tick(request, "Backup created", "U0APPROVER1")
    assert "You requested this; the checklist is for the approvers who decide it" in refused["text"]
    assert "Checklist: nobody has ticked it yet" in now_seen(app, request).seen()
