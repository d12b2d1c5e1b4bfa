"""The flag family on fakes: commands, guardrails, approvals, compare-and-set, kills on providers without a kill switch."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bot.domain.approvals.model import ApprovalState
from bot.domain.flags.messages import (
    ApprovalAsked,
    ApprovedChangeFailed,
    FlagChanged,
    FlagUnchanged,
    KillAnnouncement,
)
from bot.domain.flags.model import FlagState
from bot.domain.flags.ports import FlagsNotConfigured
from bot.domain.shared.messages import ErrorNotice
from bot.domain.shared.policy import Actor
from bot.domain.shared.ports import Reply
from tests.support import make_config
from tests.unit.flag_fakes import FakeFlagProvider, FlagWorld, flag_services

FLAGS_CONFIG = {
    "default_environment": "production",
    "rollout_max_step": 25,
    "rollout_ceiling": {"production": 50},
    "services": {"checkout.*": "api", "search": "web"},
}


def on(rollout: int = 100) -> FlagState:
    return FlagState(enabled=True, killed=False, rollout=rollout)


@pytest.fixture
def provider() -> FakeFlagProvider:
    return FakeFlagProvider(
        {
            ("checkout.new-flow", "production"): on(30),
            ("checkout.new-flow", "staging"): on(100),
            ("search", "production"): on(10),
            ("search", "staging"): on(100),
            ("beta.banner", "production"): FlagState(False, False, 100),
            ("beta.banner", "staging"): on(100),
        }
    )


@pytest.fixture
def services(provider: FakeFlagProvider) -> FlagWorld:
    return flag_services(make_config(flags=FLAGS_CONFIG), provider)


def run(services: FlagWorld, text: str, user: str = "U0DEV") -> Reply:
    return services.dispatcher.run_text(text, Actor(user, "C0OPS"))


def error_of(reply: Reply) -> str:
    assert isinstance(reply.message, ErrorNotice), reply.message
    return reply.message.message


def approve(services: FlagWorld, request_id: str, *voters: str) -> None:
    for voter in voters:
        services.families.approvals.approve(Actor(voter), request_id)


@pytest.mark.parametrize("text", ["abc", "-5", "101", "30.5", "1e2", ""])
def test_rollout_refuses_what_is_not_a_percentage_from_0_to_100(services: FlagWorld, text: str) -> None:
    reply = run(services, f"flag rollout search '{text}' staging")
    assert reply.outcome == "usage_error"
    assert "percent" in error_of(reply) or "Missing" in error_of(reply)
    assert services.flags.writes == []  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["x'; DROP TABLE feature_flags;--", "$(rm -rf /)", "a b", "`id`", "flag\nname", "-rf"])
def test_flag_names_with_shell_or_sql_syntax_are_refused_before_anything_runs(services: FlagWorld, name: str) -> None:
    reply = run(services, f"flag kill {name!r} --reason x".replace("\\n", "\n"))
    assert reply.outcome == "usage_error"
    assert "not a flag name" in error_of(reply) or "Unexpected" in error_of(reply) or "Missing" in error_of(reply)
    assert services.flags.writes == []  # type: ignore[union-attr]


def test_unknown_flag_suggests_the_closest_names(services: FlagWorld) -> None:
    reply = run(services, "flag kill chekout.new-flow --reason boom")
    assert reply.outcome == "not_found"
    assert error_of(reply) == "Unknown flag `chekout.new-flow` in `production`. Did you mean `checkout.new-flow`?"


def test_unknown_environment_is_named_with_suggestions(services: FlagWorld) -> None:
    reply = run(services, "flag kill search prod --reason boom")
    assert reply.outcome == "not_found" and "`production`" in error_of(reply)


def test_kill_acts_at_once_announces_with_undo_and_publishes_to_the_service(services: FlagWorld) -> None:
    reply = run(services, "flag kill checkout.new-flow --reason '500s on /checkout'")
    assert isinstance(reply.message, FlagChanged)
    change = reply.message.change
    assert (change.before, change.after) == (on(30), FlagState(True, True, 30))
    assert services.flags.flags[("checkout.new-flow", "production")].killed  # type: ignore[union-attr]
    (alert,) = [m for channel, m in services.notifier.posts if channel == "C0ALERTS"]  # type: ignore[attr-defined]
    assert isinstance(alert, KillAnnouncement) and alert.change.reason == "500s on /checkout" and alert.undone is None
    (event,) = services.events.events  # type: ignore[attr-defined]
    assert (event.kind, event.service, event.environment, event.actor) == ("flag.killed", "api", "production", "U0DEV")
    assert services.flag_history.changes[0].message_channel == "C0ALERTS"  # type: ignore[union-attr]
    assert services.audit.outcomes() == [  # type: ignore[attr-defined]
        ("command.flag_kill", "started"),
        ("flag.kill", "ok"),
        ("command.flag_kill", "ok"),
    ]


def test_kill_needs_a_reason(services: FlagWorld) -> None:
    reply = run(services, "flag kill search")
    assert reply.outcome == "usage_error" and "--reason" in error_of(reply)


def test_a_flag_without_a_service_publishes_no_event(services: FlagWorld) -> None:
    run(services, "flag kill beta.banner --reason x")
    assert services.events.events == []  # type: ignore[attr-defined]


def test_second_kill_sees_the_first_and_changes_nothing(services: FlagWorld) -> None:
    run(services, "flag kill search --reason first", user="U0DEV")
    reply = run(services, "flag kill search --reason second", user="U0DEV2")
    assert isinstance(reply.message, FlagUnchanged) and reply.outcome == "unchanged"
    assert reply.message.why == "it is already killed" and reply.message.last.actor == "U0DEV"  # type: ignore[union-attr]
    assert len(services.flags.writes) == 1  # type: ignore[union-attr]


def test_viewer_may_list_but_not_kill(services: FlagWorld) -> None:
    assert run(services, "flag list", user="U0VIEWER").outcome == "ok"
    reply = run(services, "flag kill search --reason x", user="U0VIEWER")
    assert reply.outcome == "denied" and "*deployer*" in error_of(reply)
    assert ("command.flag_kill", "denied") in services.audit.outcomes()  # type: ignore[attr-defined]


def test_unkill_in_an_environment_without_approvals_happens_at_once(services: FlagWorld) -> None:
    run(services, "flag kill search staging --reason x")
    reply = run(services, "flag unkill search staging")
    assert isinstance(reply.message, FlagChanged) and reply.message.change.after == on(100)


def test_unkill_in_production_waits_for_two_approvers_then_runs_as_the_requester(services: FlagWorld) -> None:
    run(services, "flag kill checkout.new-flow --reason boom")
    reply = run(services, "flag unkill checkout.new-flow --reason 'fix is out'")
    assert isinstance(reply.message, ApprovalAsked) and reply.outcome == "pending_approval"
    assert services.flags.flags[("checkout.new-flow", "production")].killed  # type: ignore[union-attr]
    (request,) = services.approvals.pending()
    assert (request.kind, request.required, request.channel) == ("flag_unkill", 2, "C0ALERTS")
    approve(services, request.id, "U0APPROVER1", "U0APPROVER2")
    assert services.flags.flags[("checkout.new-flow", "production")] == on(30)  # type: ignore[union-attr]
    unkill = services.flag_history.changes[-1]  # type: ignore[union-attr]
    assert (unkill.action, unkill.actor, unkill.approved_by) == ("unkill", "U0DEV", ("U0APPROVER1", "U0APPROVER2"))
    _, updated = services.notifier.updates[-1]  # type: ignore[attr-defined]
    assert isinstance(updated, KillAnnouncement) and updated.undone == unkill
    assert [e.kind for e in services.events.events] == ["flag.killed", "flag.unkilled"]  # type: ignore[attr-defined]


def test_rejected_unkill_changes_nothing_and_is_audited(services: FlagWorld) -> None:
    run(services, "flag kill search --reason boom")
    run(services, "flag unkill search")
    (request,) = services.approvals.pending()
    services.families.approvals.reject(Actor("U0APPROVER1"), request.id)
    assert services.flags.flags[("search", "production")].killed  # type: ignore[union-attr]
    assert ("flag.unkill", "rejected") in services.audit.outcomes()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("flag rollout search 40", "a jump of 30 points is more than the 25-point step"),
        ("flag rollout checkout.new-flow 55", "55% is above the 50% ceiling in production"),
        ("flag on beta.banner", "a jump of 100 points"),
    ],
)
def test_guarded_changes_wait_for_approval_and_say_why(services: FlagWorld, text: str, why: str) -> None:
    before = dict(services.flags.flags)  # type: ignore[union-attr]
    reply = run(services, text)
    assert isinstance(reply.message, ApprovalAsked), reply.message
    assert any(why in reason for reason in reply.message.reasons)
    assert services.flags.flags == before  # type: ignore[union-attr]
    (request,) = services.approvals.pending()
    assert (
        request.kind == "flag_rollout"
        and request.details["Change"] == f"{reply.message.before.label} → {reply.message.after.label}"
    )


@pytest.mark.parametrize(
    "text", ["flag rollout search 35", "flag rollout checkout.new-flow 0", "flag rollout search 80 staging", "flag off search"]
)
def test_small_steps_and_decreases_need_no_approval(services: FlagWorld, text: str) -> None:
    reply = run(services, text)
    assert isinstance(reply.message, FlagChanged), reply.message
    assert reply.visibility == "in_channel"


def test_rollout_message_shows_current_to_new_and_who(services: FlagWorld) -> None:
    reply = run(services, "flag rollout search 30 --reason 'step 2'")
    assert isinstance(reply.message, FlagChanged)
    change = reply.message.change
    assert (change.before.rollout, change.after.rollout, change.actor, change.reason) == (10, 30, "U0DEV", "step 2")  # type: ignore[union-attr]


def test_approved_rollout_is_not_applied_when_the_flag_changed_meanwhile(services: FlagWorld) -> None:
    run(services, "flag rollout search 60")
    (request,) = services.approvals.pending()
    run(services, "flag rollout search 20")
    with pytest.raises(Exception, match="changed since the request"):
        approve(services, request.id, "U0APPROVER1", "U0APPROVER2")
    assert services.flags.flags[("search", "production")].rollout == 20  # type: ignore[union-attr]
    assert isinstance(services.notifier.posts[-1][1], ApprovedChangeFailed)  # type: ignore[attr-defined]
    assert ("flag.rollout", "conflict") in services.audit.outcomes()  # type: ignore[attr-defined]


def test_a_change_made_outside_opsbot_between_read_and_write_is_seen_not_overwritten(
    services: FlagWorld, provider: FakeFlagProvider
) -> None:
    provider.interfere.append(lambda: provider.flags.__setitem__(("search", "production"), on(20)))
    reply = run(services, "flag rollout search 30")
    assert isinstance(reply.message, FlagChanged)
    assert reply.message.change.before == on(20)  # the fresh value, not the stale 10
    assert provider.flags[("search", "production")] == on(30)


def test_a_flag_that_keeps_changing_outside_is_left_alone_with_a_conflict(
    services: FlagWorld, provider: FakeFlagProvider
) -> None:
    for value in (21, 22, 23):
        provider.interfere.append(lambda v=value: provider.flags.__setitem__(("search", "production"), on(v)))
    reply = run(services, "flag rollout search 30")
    assert reply.outcome == "conflict" and "nothing was changed" in error_of(reply)
    assert provider.writes == [] and services.flag_history.changes == []  # type: ignore[union-attr]


def test_provider_down_means_a_clear_error_nothing_recorded_and_an_audit_row(
    services: FlagWorld, provider: FakeFlagProvider
) -> None:
    provider.down = "connection refused"
    reply = run(services, "flag kill search --reason boom")
    assert reply.outcome == "unavailable"
    assert error_of(reply) == "The fake provider is unreachable right now; nothing was changed. (connection refused)"
    assert services.flag_history.changes == [] and services.notifier.posts == []  # type: ignore[union-attr,attr-defined]
    assert ("flag.kill", "unavailable") in services.audit.outcomes()  # type: ignore[attr-defined]
    assert ("command.flag_kill", "unavailable") in services.audit.outcomes()  # type: ignore[attr-defined]


def test_concurrent_changes_are_serialized_and_the_later_sees_the_earlier(services: FlagWorld) -> None:
    start = threading.Barrier(2)

    def change(pct: int) -> Any:
        start.wait()
        return run(services, f"flag rollout search {pct}").message

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(change, [20, 30]))
    first, second = sorted(results, key=lambda m: services.flag_history.changes.index(m.change))  # type: ignore[union-attr]
    assert first.change.before == on(10)
    assert second.change.before == first.change.after  # no lost update
    assert services.flags.flags[("search", "production")] == second.change.after  # type: ignore[union-attr]


def test_provider_without_kill_switch_keeps_the_kill_in_history_and_restores_on_unkill() -> None:
    provider = FakeFlagProvider({("search", "production"): on(40), ("search", "staging"): on(100)}, kill_switch=False)
    services = flag_services(make_config(flags=FLAGS_CONFIG), provider)
    run(services, "flag kill search staging --reason boom")
    assert provider.flags[("search", "staging")] == FlagState(False, False, 100)  # off is what applications see
    shown = run(services, "flag show search").message
    staging = next(e for e in shown.environments if e.environment == "staging")  # type: ignore[attr-defined]
    assert staging.state == FlagState(True, True, 100)
    reply = run(services, "flag off search staging")
    assert "still killed" in (reply.message.note or "")  # type: ignore[attr-defined]
    assert provider.writes[-1][2] == FlagState(False, False, 100)  # nothing new for applications
    run(services, "flag on search staging")
    run(services, "flag unkill search staging")
    assert provider.flags[("search", "staging")] == on(100)


def test_a_flag_switched_on_in_the_provider_after_a_kill_is_no_longer_shown_killed() -> None:
    provider = FakeFlagProvider({("search", "staging"): on(100)}, kill_switch=False)
    services = flag_services(make_config(flags=FLAGS_CONFIG), provider)
    run(services, "flag kill search staging --reason boom")
    provider.flags[("search", "staging")] = on(100)  # someone used the provider's own UI
    reply = run(services, "flag kill search staging --reason again")
    assert isinstance(reply.message, FlagChanged) and reply.message.change.before == on(100)


def test_undo_button_on_a_kill_is_an_unkill_under_the_same_rules(services: FlagWorld) -> None:
    flags = services.families.flags.commands
    run(services, "flag kill search staging --reason boom")
    kill = services.flag_history.changes[-1]  # type: ignore[union-attr]
    viewer = flags.undo_kill  # the viewer is refused before anything happens
    with pytest.raises(Exception, match="deployer"):
        viewer(Actor("U0VIEWER"), kill.id)
    reply = flags.undo_kill(Actor("U0DEV2"), kill.id)
    assert isinstance(reply.message, FlagChanged) and reply.message.change.action == "unkill"
    assert "Undo of the kill by U0DEV" in reply.message.change.reason


def test_list_and_show_give_state_per_environment_and_last_change(services: FlagWorld) -> None:
    run(services, "flag kill search --reason boom")
    listing = run(services, "flag list sea").message
    (row,) = listing.rows  # type: ignore[attr-defined]
    assert row.name == "search" and row.service == "web" and row.last.actor == "U0DEV"
    states = {e.environment: e.state for e in row.states}
    assert states["production"].killed and not states["staging"].killed
    detail = run(services, "flag show search").message
    assert [e.environment for e in detail.environments] == ["staging", "production"]  # type: ignore[attr-defined]
    assert "unkill needs 2 approvals" in detail.environments[1].rules  # type: ignore[attr-defined]


def test_flags_not_configured_say_how_to_configure_them() -> None:
    services = flag_services(make_config(), FlagsNotConfigured())
    assert "flags.provider" in error_of(run(services, "flag list"))


def test_approval_request_is_closed_once_even_if_approved_twice(services: FlagWorld) -> None:
    run(services, "flag rollout search 60")
    (request,) = services.approvals.pending()
    approve(services, request.id, "U0APPROVER1", "U0APPROVER2")
    assert services.approvals.get(request.id)[0].state is ApprovalState.APPROVED  # type: ignore[index]
    with pytest.raises(Exception, match="already approved"):
        approve(services, request.id, "U0APPROVER3")
    assert [c.action for c in services.flag_history.changes] == ["rollout"]  # type: ignore[union-attr]
