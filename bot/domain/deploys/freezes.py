"""`/ops freeze`, `/ops unfreeze` and `/ops freezes`: ad-hoc deploy freezes next to the configured windows.

A freeze names an environment (every service there) or a service (every environment). While it
lasts, deploys there are refused unless `--hotfix --reason "…"`, which adds an admin's approval.
Configured windows (``environments.<env>.freeze_windows``) cannot be lifted from Slack.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from bot.config import OpsConfig
from bot.config.durations import parse_duration
from bot.domain.deploys import support
from bot.domain.deploys.deps import DeployDeps
from bot.domain.deploys.model import Freeze
from bot.domain.deploys.planning import FreezeNote
from bot.domain.shared import catalog
from bot.domain.shared.commands import Args, expect
from bot.domain.shared.errors import Conflict, NotFound, UsageError
from bot.domain.shared.messages import DryRunReport, WouldHappen
from bot.domain.shared.policy import Actor, Role
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


def target_of(config: OpsConfig, name: str) -> tuple[str, str]:
    """``("environment", name)`` or ``("service", name)``."""
    key = name.lower()
    is_env, is_service = key in config.environments, key in config.services
    if is_env and is_service:
        raise UsageError(f"`{name}` is both an environment and a service; rename one in the config to freeze it.")
    if is_env:
        return "environment", key
    if is_service:
        return "service", key
    raise NotFound("environment or service", name, catalog.suggest(name, [*config.environments, *config.services]))


def parse_freeze(args: Args) -> SetFreeze:
    target, duration = expect(args, FREEZE_USAGE, required=2)
    try:
        seconds = int(parse_duration(duration, maximum=MAX_FREEZE, argument="<duration>").total_seconds())
    except ValueError as exc:
        raise UsageError(str(exc) + ".", f"/ops {FREEZE_USAGE}") from None
    reason = args.options.get("reason", "").strip()
    if not reason:
        raise UsageError('Say why with `--reason "…"`: it is shown to everyone whose deploy is refused.', f"/ops {FREEZE_USAGE}")
    return SetFreeze(target, seconds, reason)


def parse_unfreeze(args: Args) -> LiftFreeze:
    (target,) = expect(args, UNFREEZE_USAGE, required=1)
    return LiftFreeze(target)


def parse_list(args: Args) -> ListFreezes:
    expect(args, "freezes", required=0)
    return ListFreezes()


def windows_now(config: OpsConfig, now: datetime) -> list[FreezeNote]:
    return [
        FreezeNote(env, window.ends_after(now), f"freeze window {window.text}")
        for env, policy in config.environments.items()
        for window in policy.freeze_windows
        if window.contains(now)
    ]


class DeployFreezes:
    """Ad-hoc freezes: setting, lifting and listing them."""

    def __init__(self, deps: DeployDeps) -> None:
        self._d = deps

    def freeze(self, command: SetFreeze, actor: Actor) -> Reply:
        d = self._d
        scope, target = self._target(actor, command.target)
        now = d.clock.now()
        with d.uow() as uow:
            freeze = uow.deploys.add_freeze(
                scope, target, command.reason, actor.user_id, now, now + timedelta(seconds=command.seconds)
            )
            uow.commit()
        self._audit(actor, "freeze.set", scope, target, reason=command.reason, until=freeze.ends_at.isoformat())
        support.announce(d, FreezeSet(freeze))
        return Reply(FreezeSet(freeze), outcome="frozen")

    def preview_freeze(self, command: SetFreeze, actor: Actor) -> Reply:
        """``--dry-run`` of `/ops freeze`: what would be refused until when; nothing is recorded or announced."""
        d = self._d
        scope, target = self._target(actor, command.target)
        now = d.clock.now()
        until = now + timedelta(seconds=command.seconds)
        what = f"every service in {target}" if scope == "environment" else f"{target} in every environment"
        with d.uow() as uow:
            active = [f for f in uow.deploys.active_freezes(now) if f.target == target]
        steps = [
            WouldHappen("Freeze", f"deploys of {what} refused until {until:%Y-%m-%d %H:%M} UTC, for: {command.reason}"),
            WouldHappen(
                "Exceptions", '`--hotfix --reason "…"` would still ask for an admin\'s approval on top; rollbacks go ahead'
            ),
            WouldHappen("Announced", f"in <#{d.config.channels.deployments}>"),
        ]
        if active:
            latest = max(f.ends_at for f in active)
            steps.append(WouldHappen("Already", f"{target} is frozen until {latest:%Y-%m-%d %H:%M} UTC; this would add a freeze"))
        return Reply(DryRunReport(f"freeze {target}", steps))

    def preview_unfreeze(self, command: LiftFreeze, actor: Actor) -> Reply:
        """``--dry-run`` of `/ops unfreeze`: which freezes would be lifted; nothing is changed."""
        d = self._d
        _, target = self._target(actor, command.target)
        now = d.clock.now()
        with d.uow() as uow:
            active = [f for f in uow.deploys.active_freezes(now) if f.target == target]
        windows = [note for note in windows_now(d.config, now) if note.target == target]
        if not active:
            hint = " Its configured freeze window cannot be lifted from Slack." if windows else ""
            raise Conflict(f"`{target}` has no freeze set with `/ops freeze`.{hint}")
        steps = [
            WouldHappen("Lifted", f"until {f.ends_at:%Y-%m-%d %H:%M} UTC, for: {f.reason}, set by", (f.created_by,))
            for f in active
        ]
        if windows:
            steps.append(WouldHappen("Still frozen", "by its configured freeze window, which cannot be lifted from Slack"))
        steps.append(WouldHappen("Announced", f"in <#{d.config.channels.deployments}>"))
        return Reply(DryRunReport(f"unfreeze {target}", steps))

    def unfreeze(self, command: LiftFreeze, actor: Actor) -> Reply:
        d = self._d
        scope, target = self._target(actor, command.target)
        now = d.clock.now()
        with d.uow() as uow:
            lifted = uow.deploys.lift_freezes(scope, target, now)
            uow.commit()
        windows = [note for note in windows_now(d.config, now) if note.target == target]
        if not lifted:
            hint = (
                " Its configured freeze window cannot be lifted from Slack; use `--hotfix` or edit the config." if windows else ""
            )
            raise Conflict(f"`{target}` has no freeze set with `/ops freeze`.{hint}")
        self._audit(actor, "freeze.lifted", scope, target, count=lifted)
        message = FreezeLifted(target, actor.user_id, windows)
        support.announce(d, message)
        return Reply(message, outcome="unfrozen")

    def list(self, command: ListFreezes, actor: Actor) -> Reply:
        d = self._d
        now = d.clock.now()
        with d.uow() as uow:
            active = uow.deploys.active_freezes(now)
        notes = windows_now(d.config, now) + [FreezeNote(f.target, f.ends_at, f.reason, f.created_by) for f in active]
        windows = [f"{env}: {window.text}" for env, policy in d.config.environments.items() for window in policy.freeze_windows]
        return Reply(FreezeList(notes, windows, now))

    def _target(self, actor: Actor, name: str) -> tuple[str, str]:
        """``target_of``, and the actor's approver role where it applies: in that environment, or globally for a
        service (a service freeze spans every environment)."""
        scope, target = target_of(self._d.config, name)
        self._d.policy.require(actor, Role.APPROVER, "freeze", environment=target if scope == "environment" else None)
        return scope, target

    def _audit(self, actor: Actor, action: str, scope: str, target: str, **params: object) -> None:
        self._d.audit.record(
            AuditEntry(
                actor=actor.user_id,
                action=action,
                outcome="ok",
                target=target,
                params={"scope": scope, **params},
                channel=actor.channel_id,
                request_id=actor.request_id,
                source=actor.source,
                service=target if scope == "service" else None,
                environment=target if scope == "environment" else None,
            )
        )
