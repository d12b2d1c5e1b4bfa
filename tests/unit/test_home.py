"""The Home family on fakes: who may vote from Home, "and N more" within Slack's 100 blocks, flag kills from the audit
log, and the refresh rule (at most one automatic views.publish per person per 10 s, plus one trailing refresh)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.console.block_rules import block_errors
from bot.domain.approvals.messages import VoteReceipt
from bot.domain.approvals.model import ApprovalRequest, ApprovalState, Decision, Vote
from bot.domain.deploys.model import Deploy, DeployKind, DeployState, Freeze
from bot.domain.home import model
from bot.domain.home.deps import HomeDeps
from bot.domain.home.messages import HomeView
from bot.domain.home.model import HomeNotice, Viewer
from bot.domain.home.service import REFRESH_JOB, HomeService, notice_of
from bot.domain.incidents.model import Incident, Status
from bot.domain.shared.errors import Unavailable
from bot.domain.shared.messages import ErrorNotice
from bot.domain.shared.policy import Actor, Policy
from bot.domain.shared.ports import AuditEntry, AuditRecord, Message, MessageRef, Reply
from bot.render import Renderer
from bot.slack_limits import BLOCKS_PER_MODAL_OR_HOME
from tests.fakes import FakeAudit, FakeGroups, FakeJobs, FakeLocks, FakeNotifier
from tests.support import FrozenClock, make_config

NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
APPROVER, ADMIN, VIEWER, DEV = (
    Viewer("U0APPROVER1", True, False),
    Viewer("U0ADMIN", True, True),
    Viewer("U0VIEWER", False, False),
    "U0DEV",
)


def request(**changes: Any) -> ApprovalRequest:
    fields: dict[str, Any] = {
        "id": "r1",
        "kind": "deploy",
        "title": "Deploy v1.2.3 of api to production",
        "requester": DEV,
        "reason": "release",
        "required": 2,
        "created_at": NOW - timedelta(minutes=5),
        "expires_at": NOW + timedelta(minutes=55),
    }
    return ApprovalRequest(**{**fields, **changes})


def vote(voter: str, decision: Decision = Decision.APPROVE) -> Vote:
    return Vote(voter, decision, NOW - timedelta(minutes=1))


def test_an_approver_may_vote_from_home_a_viewer_may_not() -> None:
    assert model.approval_row(APPROVER, request(), [], NOW).may_vote
    assert not model.approval_row(VIEWER, request(), [], NOW).may_vote


def test_nobody_may_vote_twice_or_on_their_own_request_or_after_it_expired() -> None:
    already = model.approval_row(APPROVER, request(), [vote("U0APPROVER1")], NOW)
    assert (already.may_vote, already.voted, already.approvals) == (False, "approved", 1)
    own = model.approval_row(Viewer(DEV, True, False), request(), [], NOW)
    assert (own.may_vote, own.may_withdraw) == (False, True)  # the requester may withdraw, never approve
    assert not model.approval_row(APPROVER, request(expires_at=NOW), [], NOW).may_vote


def test_an_admin_may_approve_their_own_hotfix_only_when_the_request_allows_it() -> None:
    hotfix = request(requester="U0ADMIN", admin_self_approval=True, require_admin=True)
    assert model.approval_row(ADMIN, hotfix, [], NOW).may_vote
    assert not model.approval_row(ADMIN, request(requester="U0ADMIN"), [], NOW).may_vote


def record(seq: int, action: str, at: datetime, outcome: str = "ok", **params: Any) -> AuditRecord:
    entry = AuditEntry(
        actor=DEV, action=action, outcome=outcome, target=f"{params['flag']}/production", params=params, environment="production"
    )
    return AuditRecord(seq, at, entry, "", "")


def test_flag_kills_come_from_the_audit_log_with_the_unkill_that_followed() -> None:
    kills = [
        record(3, "flag.kill", NOW - timedelta(hours=1), flag="search", reason="500s"),
        record(2, "flag.kill", NOW - timedelta(hours=2), outcome="denied", flag="search"),
        record(1, "flag.kill", NOW - timedelta(hours=3), flag="checkout", reason="slow"),
    ]
    unkills = [record(4, "flag.unkill", NOW - timedelta(hours=2), flag="checkout")]
    rows = model.kills_from(kills, unkills)
    assert [(r.flag, r.reason, r.unkilled_at) for r in rows] == [
        ("search", "500s", None),
        ("checkout", "slow", NOW - timedelta(hours=2)),
    ]


# ----- the service on fakes -----


class FakeViewers:
    """``HomeViewers`` in memory, its windows timed by the test's clock."""

    def __init__(self, clock: FrozenClock) -> None:
        self.clock = clock
        self.seen_at: dict[str, datetime] = {}
        self.windows: dict[str, datetime] = {}
        self.notices: dict[str, HomeNotice] = {}
        self.version = 0
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise Unavailable("Redis", "ConnectionError")

    def seen(self, user: str, at: datetime) -> None:
        self._check()
        self.seen_at[user] = at

    def recent(self, since: datetime) -> list[str]:
        self._check()
        return [u for u, at in self.seen_at.items() if at >= since]

    def claim(self, user: str, seconds: float) -> bool:
        self._check()
        if self.window_left(user) > 0:
            return False
        self.hold(user, seconds)
        return True

    def hold(self, user: str, seconds: float) -> None:
        self._check()
        self.windows[user] = self.clock.now() + timedelta(seconds=seconds)

    def release(self, user: str) -> None:
        self.windows.pop(user, None)

    def window_left(self, user: str) -> float:
        self._check()
        end = self.windows.get(user)
        return max((end - self.clock.now()).total_seconds(), 0.0) if end else 0.0

    def leave_notice(self, user: str, notice: HomeNotice, seconds: int) -> None:
        self._check()
        self.notices[user] = notice

    def notice(self, user: str) -> HomeNotice | None:
        self._check()
        return self.notices.get(user)

    def board_version(self) -> int:
        self._check()
        return self.version

    def bump_board_version(self) -> None:
        self._check()
        self.version += 1


class FakeSurface:
    def __init__(self) -> None:
        self.published: list[tuple[str, HomeView]] = []

    def publish(self, user: str, view: Message) -> None:
        assert isinstance(view, HomeView)
        self.published.append((user, view))


class Reads:
    """The unit of work Home reads through, holding what the test put there."""

    def __init__(self) -> None:
        self.open: list[Incident] = []
        self.requests: list[tuple[ApprovalRequest, list[Vote]]] = []
        self.targets: dict[tuple[str, str], Deploy] = {}
        self.frozen: list[Freeze] = []
        self.messages: dict[str, MessageRef] = {}  # the requests' posted messages, by key
        self.incidents, self.approvals, self.deploys, self.outbox = self, self, self, self

    def __enter__(self) -> Reads:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def open_incidents(self) -> list[Incident]:
        return list(self.open)

    def pending(self) -> list[ApprovalRequest]:
        return [r for r, _ in self.requests]

    def get(self, request_id: str) -> tuple[ApprovalRequest, list[Vote]] | None:
        return next(((r, v) for r, v in self.requests if r.id == request_id), None)

    def live(self, service: str, environment: str) -> Deploy | None:
        return self.targets.get((service, environment))

    def posted(self, key: str) -> MessageRef | None:
        return self.messages.get(key)

    def active_freezes(self, now: datetime) -> list[Freeze]:
        return list(self.frozen)


class World:
    def __init__(self) -> None:
        self.clock = FrozenClock(NOW)
        self.reads = Reads()
        self.viewers = FakeViewers(self.clock)
        self.surface = FakeSurface()
        self.jobs = FakeJobs()
        self.notifier = FakeNotifier()
        self.locks = FakeLocks(self.clock)
        self.audit = FakeAudit(self.clock)
        config = make_config()
        self.home = HomeService(
            HomeDeps(
                config=config,
                clock=self.clock,
                uow=lambda: self.reads,
                locks=self.locks,
                audit=self.audit,
                policy=Policy(config.roles.model_dump(), FakeGroups()),
                surface=self.surface,
                viewers=self.viewers,
                jobs=self.jobs,
                notifier=self.notifier,
                mutating=frozenset({"command.deploy"}),
            )
        )

    def publishes(self, user: str) -> list[HomeView]:
        return [view for who, view in self.surface.published if who == user]


@pytest.fixture
def world() -> World:
    return World()


def incident(number: int) -> Incident:
    return Incident(
        id=number,
        title=f"checkout down {number}",
        severity="P1",
        services=("api",),
        status=Status.INVESTIGATING,
        impact="",
        declared_by=DEV,
        declared_at=NOW - timedelta(minutes=number),
        commander=DEV,
        channel_id="C0INC",
        next_update_at=NOW + timedelta(minutes=30),
    )


def blocks_of(view: HomeView) -> list[dict[str, Any]]:
    rendered = Renderer().render_view(view)
    assert rendered["type"] == "home"
    return list(rendered["blocks"])


def test_thirty_of_everything_shows_eight_of_each_and_says_how_many_more_within_slacks_100_blocks(world: World) -> None:
    world.reads.open = [incident(n) for n in range(1, 31)]
    world.reads.requests = [(request(id=f"r{n}", title=f"Deploy v{n}"), []) for n in range(30)]
    world.reads.frozen = [Freeze(n, "service", f"svc{n}", "why", DEV, NOW, NOW + timedelta(hours=n + 1)) for n in range(30)]
    world.reads.targets = {
        (s, e): Deploy(f"d-{s}{e}", DeployKind.DEPLOY, s, e, "v1", DEV, "r", DeployState.RUNNING, NOW)
        for s, e in [("api", "staging"), ("api", "production"), ("web", "staging"), ("web", "production"), ("worker", "staging")]
    }
    for n in range(30):
        world.locks.acquire(f"deploy/svc{n}/staging", holder=DEV, purpose="hold", ttl_seconds=600)
        world.audit.record(
            AuditEntry(DEV, "flag.kill", "ok", f"flag{n}/production", {"flag": f"flag{n}"}, environment="production")
        )
    world.home.opened(Actor("U0APPROVER1"))
    (view,) = world.publishes("U0APPROVER1")
    blocks = blocks_of(view)
    text = str(blocks)
    assert len(blocks) <= BLOCKS_PER_MODAL_OR_HOME and block_errors(blocks, BLOCKS_PER_MODAL_OR_HOME) == []
    assert "… and 22 more: `/ops incident list`" in text and "… and 22 more: see the deployments" in text
    assert "… and 22 more: `/ops locks`" in text and "… and 22 more: `/ops audit action=flag.kill since=24h`" in text
    assert "more not shown" not in text  # our own "and N more", not the renderer's last-resort cut
    assert text.count("approval_approve") == 8


def test_a_viewer_sees_the_pending_request_without_buttons(world: World) -> None:
    world.reads.requests = [(request(), [])]
    world.home.opened(Actor("U0VIEWER"))
    text = str(blocks_of(world.publishes("U0VIEWER")[0]))
    assert "Deploy v1.2.3 of api to production" in text and "approval_approve" not in text


def test_opening_home_again_within_ten_seconds_publishes_nothing_more(world: World) -> None:
    assert world.home.opened(Actor("U0APPROVER1"))
    world.clock.advance(seconds=4)
    assert not world.home.opened(Actor("U0APPROVER1"))
    world.clock.advance(seconds=7)
    assert world.home.opened(Actor("U0APPROVER1"))
    assert len(world.publishes("U0APPROVER1")) == 2


def test_changes_within_ten_seconds_publish_once_then_one_trailing_refresh(world: World) -> None:
    world.viewers.seen("U0APPROVER1", NOW)
    world.home.fan_out(Actor("opsbot"), {})  # the first change: at once
    for _ in range(3):  # three more changes in the same window: one trailing refresh, keyed per person
        world.clock.advance(seconds=2)
        world.home.fan_out(Actor("opsbot"), {})
    assert len(world.publishes("U0APPROVER1")) == 1
    trailing = {(at, name, key) for at, name, _, key in world.jobs.scheduled}
    assert trailing == {(NOW + timedelta(seconds=10.05), REFRESH_JOB, "home:refresh:U0APPROVER1")}
    world.clock.advance(seconds=5)
    world.home.refresh(Actor("opsbot"), {"user": "U0APPROVER1"})
    assert len(world.publishes("U0APPROVER1")) == 2


def test_viewers_who_have_not_opened_home_lately_are_not_refreshed(world: World) -> None:
    world.viewers.seen("U0OLD", NOW - model.VIEWERS_FOR - timedelta(seconds=1))
    world.home.fan_out(Actor("opsbot"), {})
    assert world.surface.published == []


def test_redis_away_home_still_opens_and_says_it_will_not_refresh_by_itself(world: World) -> None:
    world.viewers.down = world.locks.down = True
    assert world.home.opened(Actor("U0APPROVER1"))
    view = world.publishes("U0APPROVER1")[0]
    assert view.refreshing is False
    assert view.unavailable == ["Deploy locks: Redis is unreachable right now"]
    assert "will not refresh by itself right now (Redis is unreachable)" in str(blocks_of(view))


def test_a_click_on_home_is_answered_on_home_and_by_dm_when_home_cannot_be_published(world: World) -> None:
    receipt = Reply(VoteReceipt(request(), Decision.APPROVE, 1))
    world.home.clicked(Actor("U0APPROVER1"), receipt)
    assert world.publishes("U0APPROVER1")[-1].notice == HomeNotice(
        "✅", "You approved Deploy v1.2.3 of api to production: 1 of 2."
    )

    def refuse(user: str, view: Message) -> None:
        from bot.domain.shared.errors import OpsError

        raise OpsError("Slack refused to publish the Home tab: `not_enabled`.")

    world.surface.publish = refuse  # type: ignore[method-assign]
    world.home.clicked(Actor("U0APPROVER1"), receipt)
    assert world.notifier.posts == [("U0APPROVER1", receipt.message)]


def test_a_refused_click_becomes_the_notice() -> None:
    refused = Reply(ErrorNotice("conflict", "You already approved this request; each approver counts once."))
    assert notice_of(refused) == HomeNotice("🔒", "You already approved this request; each approver counts once.")
    withdrawn = VoteReceipt(request(state=ApprovalState.CANCELLED), Decision.REJECT, 0)
    assert notice_of(Reply(withdrawn)).text == "You withdrew Deploy v1.2.3 of api to production."


@pytest.mark.parametrize(
    "action, outcome, refreshes",
    [
        ("command.deploy", "requested", True),
        ("command.locks", "ok", False),  # a read
        ("command.deploy", "denied", False),  # refused: nothing changed
        ("command.deploy", "dry_run", False),  # only says what would happen
        ("click.approve", "approved", True),
        ("job.deploys.run", "ok", True),
    ],
)
def test_home_refreshes_after_requests_that_change_something(world: World, action: str, outcome: str, refreshes: bool) -> None:
    assert world.home.shows_change(action, outcome) is refreshes


def test_a_running_deploy_is_in_progress_and_a_requested_one_is_not(world: World) -> None:
    def deploy(state: DeployState, env: str) -> Deploy:
        return Deploy("d-1", DeployKind.DEPLOY, "api", env, "v1", DEV, "r", state, NOW, started_at=NOW)

    world.reads.targets = {
        ("api", "staging"): deploy(DeployState.RUNNING, "staging"),
        ("api", "production"): deploy(DeployState.REQUESTED, "production"),
    }
    board = world.home.board()
    assert [(d.environment, d.state) for d in board.deploys] == [("staging", DeployState.RUNNING)]


def test_someone_with_no_opsbot_role_is_told_so_and_shown_nothing_else(world: World) -> None:
    world.reads.open = [incident(1)]
    world.reads.requests = [(request(), [])]
    world.home.opened(Actor("U0NOBODY"))
    text = str(blocks_of(world.publishes("U0NOBODY")[0]))
    assert "with the *viewer* role or above" in text
    assert "INC-1" not in text and "Deploy v1.2.3" not in text


def test_the_manifest_declares_the_home_tab_and_its_event() -> None:
    import yaml

    manifest = yaml.safe_load((Path(__file__).resolve().parents[2] / "manifest.yml").read_text(encoding="utf-8"))
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert "app_home_opened" in manifest["settings"]["event_subscriptions"]["bot_events"]


def test_the_board_is_read_once_for_everyone_until_a_change_is_reported_or_it_is_five_seconds_old(world: World) -> None:
    reads = []
    original = world.reads.open_incidents
    world.reads.open_incidents = lambda: reads.append(1) or original()  # type: ignore[method-assign]
    for user in ("U0APPROVER1", "U0APPROVER2", "U0VIEWER"):
        world.home.opened(Actor(user))
    assert len(reads) == 1
    world.reads.open = [incident(1)]
    world.home.changed()  # a request changed something: the next reader sees it
    world.home.opened(Actor("U0ADMIN"))
    world.home.opened(Actor("U0APPROVER3"))
    assert len(reads) == 2
    assert "INC-1" in str(blocks_of(world.publishes("U0ADMIN")[0]))
    world.clock.advance(seconds=6)
    world.home.opened(Actor("U0DEV"))
    assert len(reads) == 3  # older than five seconds: read again
