"""`/ops freeze`, `/ops unfreeze` and `/ops freezes`: ad-hoc deploy freezes next to the configured windows.

A freeze names an environment (every service there) or a service (every environment). While it
lasts, deploys there are refused unless `--hotfix --reason "…"`, which adds an admin's approval.
Configured windows (``environments.<env>.freeze_windows``) cannot be lifted from Slack.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from bot.domain.shared import catalog

from bot.domain.deploys import support as deploy_support
from bot.domain.shared.commands import Args, Subcommand, expect
from bot.domain.shared.context import Call
from bot.domain.deploys.planning import FreezeNote
from bot.domain.deploys.ports import Freeze
from bot.config.durations import parse_duration
from bot.domain.shared.errors import Conflict, NotFound, UsageError
from bot.domain.shared.policy import Role
from bot.domain.shared.ports import AuditEntry, Reply

MAX_FREEZE = timedelta(days=30)
FREEZE_USAGE = 'freeze <env|service> <duration> --reason "…"'
UNFREEZE_USAGE = "unfreeze <env|service>"


@dataclass(frozen=True)
class SetFreeze:
    target: str
    seconds: int
    reason: str


@dataclass(frozen=True)
class LiftFreeze:
    target: str


@dataclass(frozen=True)
class ListFreezes:
    pass


@dataclass(frozen=True)
class FreezeSet:
    template: ClassVar[str] = "deploy/freeze_set"
    freeze: Freeze


@dataclass(frozen=True)
class FreezeLifted:
    template: ClassVar[str] = "deploy/freeze_lifted"
    target: str
    by: str
    windows: list[FreezeNote]


@dataclass(frozen=True)
class FreezeList:
    template: ClassVar[str] = "deploy/freezes"
    freezes: list[FreezeNote]
    windows: list[str]
    now: datetime


def target_of(call: Call, name: str) -> tuple[str, str]:
    """``("environment", name)`` or ``("service", name)``."""
    key = name.lower()
    is_env, is_service = key in call.config.environments, key in call.config.services
    if is_env and is_service:
        raise UsageError(f"`{name}` is both an environment and a service; rename one in the config to freeze it.")
    if is_env:
        return "environment", key
    if is_service:
        return "service", key
    raise NotFound("environment or service", name, catalog.suggest(name, [*call.config.environments, *call.config.services]))


def parse_freeze(args: Args) -> SetFreeze:
    target, duration = expect(args, FREEZE_USAGE, required=2)
    try:
        seconds = int(parse_duration(duration, maximum=MAX_FREEZE).total_seconds())
    except ValueError as exc:
        raise UsageError(str(exc) + ".", f"/ops {FREEZE_USAGE}") from None
    reason = args.options.get("reason", "").strip()
    if not reason:
        raise UsageError('Say why with `--reason "…"`: it is shown to everyone whose deploy is refused.', f"/ops {FREEZE_USAGE}")
    return SetFreeze(target, seconds, reason)


def run_freeze(command: SetFreeze, call: Call) -> Reply:
    scope, target = target_of(call, command.target)
    now = call.services.clock.now()
    freeze = deploy_support.store(call).add_freeze(scope, target, command.reason, call.actor.user_id, now,
                                                   now + timedelta(seconds=command.seconds))
    _audit(call, "freeze.set", scope, target, reason=command.reason, until=freeze.ends_at.isoformat())
    deploy_support.announce(call, FreezeSet(freeze))
    return Reply(FreezeSet(freeze), outcome="frozen")


def parse_unfreeze(args: Args) -> LiftFreeze:
    (target,) = expect(args, UNFREEZE_USAGE, required=1)
    return LiftFreeze(target)


def run_unfreeze(command: LiftFreeze, call: Call) -> Reply:
    scope, target = target_of(call, command.target)
    now = call.services.clock.now()
    lifted = deploy_support.store(call).lift_freezes(scope, target, now)
    windows = [note for note in _windows_now(call, now) if note.target == target]
    if not lifted:
        hint = " Its configured freeze window cannot be lifted from Slack; use `--hotfix` or edit the config." if windows else ""
        raise Conflict(f"`{target}` has no freeze set with `/ops freeze`.{hint}")
    _audit(call, "freeze.lifted", scope, target, count=lifted)
    message = FreezeLifted(target, call.actor.user_id, windows)
    deploy_support.announce(call, message)
    return Reply(message, outcome="unfrozen")


def run_list(command: ListFreezes, call: Call) -> Reply:
    now = call.services.clock.now()
    notes = _windows_now(call, now) + [FreezeNote(f.target, f.ends_at, f.reason, f.created_by)
                                       for f in deploy_support.store(call).active_freezes(now)]
    windows = [f"{env}: {window.text}" for env, policy in call.config.environments.items() for window in policy.freeze_windows]
    return Reply(FreezeList(notes, windows, now))


def _windows_now(call: Call, now: datetime) -> list[FreezeNote]:
    return [FreezeNote(env, window.ends_after(now), f"freeze window {window.text}")
            for env, policy in call.config.environments.items() for window in policy.freeze_windows if window.contains(now)]


def _audit(call: Call, action: str, scope: str, target: str, **params: object) -> None:
    actor = call.actor
    call.services.audit.record(AuditEntry(
        actor=actor.user_id, action=action, outcome="ok", target=target, params={"scope": scope, **params},
        channel=actor.channel_id, request_id=actor.request_id, source=actor.source,
        service=target if scope == "service" else None, environment=target if scope == "environment" else None,
    ))


def parse_list(args: Args) -> ListFreezes:
    expect(args, "freezes", required=0)
    return ListFreezes()


COMMANDS: list[Subcommand] = [
    Subcommand(("freeze",), "Refuse deploys to an environment or service for a while", FREEZE_USAGE, Role.APPROVER,
               parse_freeze, run_freeze, options=frozenset({"reason"}), mutates=True),
    Subcommand(("unfreeze",), "Lift the freezes set with /ops freeze", UNFREEZE_USAGE, Role.APPROVER,
               parse_unfreeze, run_unfreeze, mutates=True),
    Subcommand(("freezes",), "Freezes in effect now, and the configured windows", "freezes", Role.VIEWER, parse_list, run_list),
]
