"""Checklists on approval requests: an approver's vote counts only once they ticked every item, ticks are per approver,
and items bound to a gate are ticked by opsbot for everyone. The rules (``model``) pure; the service on fakes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from bot.config import CHECKLIST_ITEM_TEXT_MAX, CHECKLIST_ITEMS_MAX, ConfigError, parse_config
from bot.domain.approvals.messages import ApprovalMessage, ChecklistTicked
from bot.domain.approvals.model import (
    ApprovalRequest,
    ApprovalState,
    ChecklistItem,
    Decision,
    Tick,
    Vote,
    judge_tick,
    judge_vote,
    progress,
    satisfy,
    unticked,
)
from bot.domain.deploys import planning
from bot.domain.deploys.model import DeployKind
from bot.domain.shared.errors import Conflict, NotPermitted, Refused, UsageError
from bot.domain.shared.policy import Actor
from bot.slack_limits import CHECKBOXES_OPTIONS_MAX, OPTION_TEXT_MAX
from tests.fakes import World, fake_world
from tests.support import config_data

NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
ITEMS = ("Database migrations tested", "Rollback plan documented", "Backup created")


def request(*items: ChecklistItem, required: int = 2) -> ApprovalRequest:
    return ApprovalRequest(
        id="r1",
        kind="deploy",
        title="Deploy v1.2.3 of api to production",
        requester="U0DEV",
        reason="release",
        required=required,
        created_at=NOW,
        expires_at=NOW + timedelta(minutes=30),
        environment="production",
        checklist=items or tuple(ChecklistItem(text) for text in ITEMS),
    )


def approve(voter: str) -> Vote:
    return Vote(voter, Decision.APPROVE, NOW)


def ticks(voter: str, *positions: int) -> list[Tick]:
    return [Tick(voter, i, NOW) for i in positions]


def test_an_approve_with_no_ticks_is_refused_naming_every_item_not_ticked() -> None:
    with pytest.raises(Refused) as refused:
        judge_vote(request(), [], approve("U0APPROVER1"), NOW)
    assert refused.value.message == (
        "Tick every checklist item before approving: Database migrations tested, Rollback plan documented and "
        "Backup created are not ticked."
    )


def test_partial_ticks_name_only_what_is_missing() -> None:
    with pytest.raises(Refused) as refused:
        judge_vote(request(), [], approve("U0APPROVER1"), NOW, ticks("U0APPROVER1", 0, 1))
    assert refused.value.message == "Tick every checklist item before approving: Backup created is not ticked."


def test_once_every_item_is_ticked_the_approve_counts() -> None:
    verdict = judge_vote(request(required=1), [], approve("U0APPROVER1"), NOW, ticks("U0APPROVER1", 0, 1, 2))
    assert verdict.keep_vote and verdict.state is ApprovalState.APPROVED


def test_ticks_are_per_approver_one_persons_ticks_do_not_let_another_approve() -> None:
    alice_ticked_all = ticks("U0APPROVER1", 0, 1, 2)
    with pytest.raises(Refused, match="Database migrations tested, Rollback plan documented and Backup created"):
        judge_vote(request(), [], approve("U0APPROVER2"), NOW, alice_ticked_all)


def test_a_reject_needs_no_ticks() -> None:
    verdict = judge_vote(request(), [], Vote("U0APPROVER1", Decision.REJECT, NOW), NOW)
    assert verdict.state is ApprovalState.REJECTED


def test_the_requester_hears_the_two_person_rule_before_the_checklist() -> None:
    with pytest.raises(Refused, match="another approver must approve it"):
        judge_vote(request(), [], approve("U0DEV"), NOW)


def test_an_item_satisfied_by_a_gate_counts_as_ticked_for_everyone() -> None:
    gated = request(ChecklistItem("Staging deployment successful", "promotion"), ChecklistItem("Backup created"))
    after, newly = satisfy(gated, "promotion", "v1.2.3 succeeded in staging at 2026-11-23 13:00 UTC (d-1)")
    assert [i.text for i in newly] == ["Staging deployment successful"]
    assert after.checklist[0].satisfied == "v1.2.3 succeeded in staging at 2026-11-23 13:00 UTC (d-1)"
    assert [i.text for i in unticked(after, [], "U0APPROVER1")] == ["Backup created"]
    assert judge_vote(after, [], approve("U0APPROVER1"), NOW, ticks("U0APPROVER1", 1)).keep_vote
    assert satisfy(after, "promotion", "again")[1] == []  # a gate ticks once; its first note stays
    assert satisfy(after, "ci", "green")[1] == []  # no item is bound to CI


def test_a_gate_does_not_tick_items_bound_to_another_gate_or_to_none() -> None:
    gated = request(ChecklistItem("All tests pass (CI green)", "ci"), ChecklistItem("Staging deployment successful", "promotion"))
    after, newly = satisfy(gated, "ci", "12 of 12 checks green")
    assert [i.text for i in newly] == ["All tests pass (CI green)"]
    assert [i.text for i in unticked(after, [], "U0APPROVER1")] == ["Staging deployment successful"]


def test_a_tick_is_refused_once_the_clicker_voted_on_a_gate_item_or_outside_the_list() -> None:
    gated = request(ChecklistItem("Staging deployment successful", "promotion", "v1 succeeded"), ChecklistItem("Backup created"))
    assert judge_tick(gated, [], "U0APPROVER1", 1, NOW).text == "Backup created"
    with pytest.raises(Conflict, match="already ticked for everyone by opsbot: v1 succeeded"):
        judge_tick(gated, [], "U0APPROVER1", 0, NOW)
    with pytest.raises(UsageError, match="not on this request"):
        judge_tick(gated, [], "U0APPROVER1", 7, NOW)
    with pytest.raises(Conflict, match="You already approved this request"):
        judge_tick(gated, [approve("U0APPROVER1")], "U0APPROVER1", 1, NOW)
    with pytest.raises(Conflict, match="already expired"):
        judge_tick(gated, [], "U0APPROVER1", 1, NOW + timedelta(hours=1))


def test_progress_lists_each_approver_in_the_order_they_first_ticked() -> None:
    shown = progress(request(), [Tick("U0APPROVER2", 0, NOW), *ticks("U0APPROVER1", 0, 1, 2)])
    assert [(p.voter, p.ticked, p.total, p.complete) for p in shown] == [
        ("U0APPROVER2", 1, 3, False),
        ("U0APPROVER1", 3, 3, True),
    ]


# ----- the service, on fakes -----


@pytest.fixture
def world() -> World:
    return fake_world()


def open_request(world: World, *items: ChecklistItem) -> ApprovalRequest:
    checklist = items or tuple(ChecklistItem(text) for text in ITEMS)
    return world.families.approvals.request(
        Actor("U0DEV"),
        kind="deploy",
        title="Deploy v1.2.3 of api to production",
        reason="release",
        required=2,
        timeout_minutes=30,
        service="api",
        environment="production",
        checklist=checklist,
    )


def test_a_vote_without_ticks_is_not_recorded_and_one_after_ticking_all_is(world: World) -> None:
    approvals = world.families.approvals
    opened = open_request(world)
    with pytest.raises(Refused):
        approvals.approve(Actor("U0APPROVER1"), opened.id)
    assert world.db.approvals.votes[opened.id] == []
    for i in range(3):
        approvals.tick(Actor("U0APPROVER1"), opened.id, i, True)
    approvals.approve(Actor("U0APPROVER1"), opened.id)
    assert [v.voter for v in world.db.approvals.votes[opened.id]] == ["U0APPROVER1"]
    last = world.notifier.updates[-1][1]
    assert isinstance(last, ApprovalMessage) and last.approvals == 1


def test_the_same_tick_twice_records_once_and_is_audited_once(world: World) -> None:
    approvals = world.families.approvals
    opened = open_request(world)
    first = approvals.tick(Actor("U0APPROVER1"), opened.id, 2, True)
    again = approvals.tick(Actor("U0APPROVER1"), opened.id, 2, True)
    assert (first.outcome, again.outcome) == ("ticked", "unchanged")
    assert isinstance(again.message, ChecklistTicked) and not again.message.changed
    assert world.db.approvals.ticks(opened.id) == [Tick("U0APPROVER1", 2, world.clock.now())]
    rows = [e for e in world.audit.entries if e.action.startswith("approval.checklist")]
    assert [(e.actor, e.action, e.params["item"]) for e in rows] == [
        ("U0APPROVER1", "approval.checklist_ticked", "Backup created")
    ]
    approvals.tick(Actor("U0APPROVER1"), opened.id, 2, False)
    assert world.db.approvals.ticks(opened.id) == []
    assert world.audit.entries[-1].action == "approval.checklist_unticked"


def test_someone_who_may_not_vote_may_not_tick(world: World) -> None:
    opened = open_request(world)
    with pytest.raises(NotPermitted, match="approver"):
        world.families.approvals.tick(Actor("U0DEV2"), opened.id, 0, True)
    assert world.db.approvals.ticks(opened.id) == []


def test_satisfy_ticks_the_items_bound_to_the_gate_edits_the_message_and_is_audited(world: World) -> None:
    approvals = world.families.approvals
    opened = open_request(world, ChecklistItem("All tests pass (CI green)", "ci"), ChecklistItem("Backup created"))
    with world.db.uow() as uow:
        newly = approvals.satisfy(uow, opened.id, gate="ci", note="12 of 12 checks green on 3f2a9c1")
        uow.commit()
    assert [i.text for i in newly] == ["All tests pass (CI green)"]
    message = world.notifier.updates[-1][1]
    assert isinstance(message, ApprovalMessage)
    assert message.request.checklist[0].satisfied == "12 of 12 checks green on 3f2a9c1"
    (row,) = [e for e in world.audit.entries if e.action == "approval.checklist_satisfied"]
    assert row.actor == "opsbot" and row.params["gate"] == "ci"
    approvals.tick(Actor("U0APPROVER1"), opened.id, 1, True)
    approvals.approve(Actor("U0APPROVER1"), opened.id)  # CI's item counts for everyone
    assert [v.voter for v in world.db.approvals.votes[opened.id]] == ["U0APPROVER1"]


def test_deploys_carry_the_environments_checklist_rollbacks_none() -> None:
    config = parse_config(checklist_config(requires_verified_in="staging", checklist=["Backup created"]), "test")
    deps = SimpleNamespace(config=config)
    assert planning.checklist(deps, DeployKind.DEPLOY, "production", None) == (ChecklistItem("Backup created"),)  # type: ignore[arg-type]
    assert planning.checklist(deps, DeployKind.ROLLBACK, "production", None) == ()  # type: ignore[arg-type]


# ----- the config -----


def checklist_config(**production: object) -> dict[str, object]:
    data = config_data()
    data["environments"]["production"].update(production)  # type: ignore[index]
    return data


def config_errors(data: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_config(data, "test")
    return raised.value.errors


def test_the_config_takes_strings_and_objects_bound_to_a_gate() -> None:
    data = checklist_config(
        requires_verified_in="staging",
        checklist=["Backup created", {"item": "Staging deployment successful", "satisfied_by": "promotion"}],
    )
    items = parse_config(data, "test").environments["production"].checklist
    assert [(i.item, i.satisfied_by) for i in items] == [("Backup created", None), ("Staging deployment successful", "promotion")]


@pytest.mark.parametrize(
    ("checklist", "expected"),
    [
        (
            [{"item": "CI green", "satisfied_by": "jenkins"}],
            "checklist[0].satisfied_by: unknown gate 'jenkins' (known: ci, promotion)",
        ),
        (["  "], "checklist[0].item: an empty checklist item"),
        (["Backup created", "backup  created"], "checklist: 'backup created' is listed twice"),
        (["x" * 76], "checklist[0].item: 76 characters; Slack shows a checkbox's text up to 75 characters"),
        ([f"item {i}" for i in range(11)], "checklist: 11 items; Slack shows at most 10 checkboxes in one group"),
        (
            [{"item": "Staging deployment successful", "satisfied_by": "promotion"}],
            "checklist[0].satisfied_by: promotion needs the promotion gate (environments.production.requires_verified_in)",
        ),
        (
            [{"item": "All tests pass (CI green)", "satisfied_by": "ci"}],
            "checklist[0].satisfied_by: ci needs a CI gate (services.<name>.ci) covering production: no service has one",
        ),
    ],
)
def test_bad_checklists_are_config_errors_naming_the_path(checklist: list[object], expected: str) -> None:
    errors = config_errors(checklist_config(checklist=checklist))
    assert any(f"environments.production.{expected}" in line for line in errors), errors


def test_a_checklist_where_no_approvals_are_asked_is_a_config_error() -> None:
    data = config_data()
    data["environments"]["staging"]["checklist"] = ["Backup created"]
    assert any("environments.staging.checklist: it is shown on approval requests" in e for e in config_errors(data))


def test_the_configs_limits_are_slacks_checkbox_limits() -> None:
    assert (CHECKLIST_ITEMS_MAX, CHECKLIST_ITEM_TEXT_MAX) == (CHECKBOXES_OPTIONS_MAX, OPTION_TEXT_MAX) == (10, 75)
