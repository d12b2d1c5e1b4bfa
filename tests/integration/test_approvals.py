"""The shared approval mechanism: the two-person rule, enforced on the server, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from bot.config import OpsConfig
from bot.console.slack_emulator import Posted, SlackEmulator
from bot.domain.approvals.model import ApprovalRequest, ApprovalState, ChecklistItem, Vote
from bot.domain.approvals.ports import Approved
from bot.domain.shared.policy import Actor
from bot.domain.shared.ports import UnitOfWork
from tests.fakes import FakeJobs
from tests.support import Bot, FrozenClock, eventually


class Recorder:
    def __init__(self) -> None:
        self.approved_ids: list[str] = []
        self.closed_ids: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def approved(self, uow: UnitOfWork, actor: Actor, request: ApprovalRequest, votes: list[Vote]) -> Approved:
        with self._lock:
            self.approved_ids.append(request.id)
        return Approved()

    def closed(self, uow: UnitOfWork, actor: Actor, request: ApprovalRequest) -> None:
        with self._lock:
            self.closed_ids.append((request.id, request.state.value))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def app(
    emulator: SlackEmulator,
    db_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    config: OpsConfig,
    recorder: Recorder,
    clock: FrozenClock,
) -> Bot:
    # The queue only records jobs: an in-process timer would run the expiry job as soon as a test moves
    # the clock, racing the click that test makes to see the request expire.
    return Bot(
        emulator=emulator,
        db_url=db_url,
        redis_client=redis_client,
        prefix=redis_prefix,
        config=config,
        approval_outcomes={"test": recorder},
        clock=clock,
        jobs=FakeJobs(),
    )


def open_request(app: Bot, requester: str = "U0DEV", required: int = 2, **kwargs: object) -> tuple[ApprovalRequest, Posted]:
    request = app.services.approvals.request(
        Actor(requester),
        kind="test",
        title="Deploy v1.2.3 of api to production",
        reason="release",
        required=required,
        timeout_minutes=30,
        service="api",
        environment="production",
        **kwargs,
    )
    message = app.emulator.wait_for(
        lambda: next((m for m in app.emulator.in_channel("C0DEPLOYS") if request.title in m.seen()), None)
    )
    assert message.channel == "C0DEPLOYS"
    return request, message


def test_two_distinct_approvers_approve_and_the_message_updates_in_place(app: Bot, recorder: Recorder) -> None:
    request, message = open_request(app)
    assert "Approval needed" in message.seen() and "0 of 2" in message.seen()
    app.click(message, "Approve", "U0APPROVER1")
    assert "Approved by @U0APPROVER1 at 14:00, 1 of 2" in app.emulator.find(message.ts).seen()
    assert recorder.approved_ids == []
    app.click(message, "Approve", "U0APPROVER2")
    updated = app.emulator.find(message.ts)
    assert updated.edits == 2 and "Approved: Deploy v1.2.3" in updated.seen()
    assert updated.buttons() == []
    assert recorder.approved_ids == [request.id]


def test_requester_cannot_approve_their_own_request(app: Bot, recorder: Recorder) -> None:
    _, message = open_request(app, requester="U0APPROVER1")
    replies = app.click(message, "Approve", "U0APPROVER1")
    assert "two-person rule" in replies[-1]["text"]
    assert replies[-1]["response_type"] == "ephemeral"
    assert "0 of 2" in app.emulator.find(message.ts).seen()
    assert ("U0APPROVER1", "click.approve", "denied") in app.audit_actions()


def test_admin_may_self_approve_only_under_hotfix_policy_and_it_is_loud(app: Bot, recorder: Recorder) -> None:
    request, message = open_request(app, requester="U0ADMIN", required=1, admin_self_approval=True)
    replies = app.click(message, "Approve", "U0ADMIN")
    assert "under the hotfix policy" in replies[-1]["text"]
    assert "SELF-APPROVED by an admin" in app.emulator.find(message.ts).seen()
    assert recorder.approved_ids == [request.id]


def test_non_approver_click_is_refused_with_the_role_named(app: Bot, recorder: Recorder) -> None:
    _, message = open_request(app)
    replies = app.click(message, "Approve", "U0DEV2")
    assert "needs the *approver* role" in replies[-1]["text"]
    assert ("U0DEV2", "click.approve", "denied") in app.audit_actions()


def test_one_rejection_closes_the_request_and_later_clicks_are_refused(app: Bot, recorder: Recorder) -> None:
    request, message = open_request(app)
    as_first_seen = copy.deepcopy(message)  # a client that has not yet redrawn the message
    app.click(message, "Approve", "U0APPROVER1")
    app.click(message, "Reject", "U0APPROVER2")
    assert "Rejected: Deploy" in app.emulator.find(message.ts).seen()
    assert recorder.closed_ids == [(request.id, "rejected")]
    replies = app.click(as_first_seen, "Approve", "U0APPROVER3")
    assert "already rejected" in replies[-1]["text"]


def test_expired_request_refuses_clicks_and_says_so(app: Bot, recorder: Recorder, clock: FrozenClock) -> None:
    request, message = open_request(app)
    clock.advance(minutes=31)
    replies = app.click(message, "Approve", "U0APPROVER1")
    assert "expired at 14:30 UTC" in replies[-1]["text"]
    assert "Expired at 14:30" in app.emulator.find(message.ts).seen()
    assert recorder.closed_ids == [(request.id, "expired")]
    told = [m.seen() for m in app.emulator.visible() if m.channel == "D0DEV"]  # the requester's DM
    assert len(told) == 1 and "Your request *Deploy v1.2.3 of api to production* expired at 14:30 UTC" in told[0]
    assert "0 of 2 approvals" in told[0]


def test_the_expiry_job_tells_the_requester_when_the_request_expired(app: Bot, recorder: Recorder, clock: FrozenClock) -> None:
    request, message = open_request(app)
    app.click(message, "Approve", "U0APPROVER1")
    clock.advance(minutes=45)  # the expiry is noticed a quarter of an hour late
    app.services.approvals.expire(Actor("opsbot", source="job"), {"request_id": request.id})
    told = [m.seen() for m in app.emulator.visible() if m.channel == "D0DEV"]
    assert len(told) == 1 and "expired at 14:30 UTC with 1 of 2 approvals" in told[0]  # its deadline, not 14:45


def test_double_click_by_one_approver_counts_once(app: Bot, recorder: Recorder) -> None:
    _, message = open_request(app)
    app.click(message, "Approve", "U0APPROVER1")
    replies = app.click(message, "Approve", "U0APPROVER1")
    assert "already approved" in replies[-1]["text"]
    assert "1 of 2" in app.emulator.find(message.ts).seen()


def test_twenty_concurrent_approve_clicks_approve_once(app: Bot, recorder: Recorder) -> None:
    request, message = open_request(app, required=1)
    as_posted = copy.deepcopy(message)  # everyone clicks the message as first drawn
    voters = ["U0APPROVER1", "U0APPROVER2", "U0APPROVER3", "U0ADMIN"] * 5
    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(lambda user: app.click(as_posted, "Approve", user), voters))
    eventually(lambda: len(app.emulator.calls_to("response_url")) >= 20)
    assert recorder.approved_ids == [request.id]
    found = app.services.approvals.get(request.id)
    assert found is not None and found[0].state is ApprovalState.APPROVED
    assert len(found[1]) == 1


CHECKLIST = (
    ChecklistItem("Staging deployment successful", "promotion", "v1.2.3 succeeded in staging"),
    ChecklistItem("Backup created"),
)


def test_concurrent_ticks_record_one_tick_per_approver_and_item(app: Bot, recorder: Recorder) -> None:
    request, message = open_request(app, checklist=CHECKLIST)
    as_posted = copy.deepcopy(message)
    clickers = ["U0APPROVER1", "U0APPROVER2", "U0APPROVER3", "U0ADMIN"] * 5
    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(lambda user: app.tick(as_posted, "Backup created", user), clickers))
    eventually(lambda: len(app.emulator.calls_to("response_url")) >= 20)
    ticks = app.reads.approvals.ticks(request.id)  # type: ignore[union-attr]
    assert sorted((t.voter, t.item) for t in ticks) == [
        ("U0ADMIN", 1),
        ("U0APPROVER1", 1),
        ("U0APPROVER2", 1),
        ("U0APPROVER3", 1),
    ]
    ticked = [r["actor"] for r in app.services.adapters.audit.rows() if r["action"] == "approval.checklist_ticked"]  # type: ignore[attr-defined]
    assert sorted(ticked) == ["U0ADMIN", "U0APPROVER1", "U0APPROVER2", "U0APPROVER3"]
    stored = app.services.approvals.get(request.id)
    assert stored is not None and stored[0].checklist == CHECKLIST  # the gate's note survives the round trip
    app.click(app.emulator.find(message.ts), "Approve", "U0APPROVER1")  # type: ignore[arg-type]
    assert "1 of 2" in app.emulator.find(message.ts).seen()  # type: ignore[union-attr]
