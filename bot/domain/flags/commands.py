"""`/ops flag …`: list and show flags; on/off; kill (at once, loudly); unkill and guarded rollouts (approved).

The runbook's containment step, ``UPDATE feature_flags SET kill_switch = true WHERE name = …``,
becomes `/ops flag kill <name> --reason "…"`: any deployer, no approval, announced in the alerts
channel with an Undo button, published to the service's open incidents, and audited.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.domain.flags.actions import FlagActions
from bot.domain.flags.changes import (
    Decide,
    NeedsApproval,
    NoChange,
    approvals_for,
    effective,
    environment,
    flag_environments,
    rollout_guard,
    service_of,
    unknown_flag,
)
from bot.domain.flags.deps import FlagDeps
from bot.domain.flags.messages import EnvironmentState, FlagDetail, FlagList, FlagRow, StateIn
from bot.domain.flags.model import FlagChange, FlagState
from bot.domain.shared.commands import Args, Subcommand, expect
from bot.domain.shared.errors import Conflict, NotFound, UsageError
from bot.domain.shared.family import Family
from bot.domain.shared.policy import Actor, Role
from bot.domain.shared.ports import Reply
from bot.domain.shared.text import plural

FLAG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,99}$")
PERCENT = re.compile(r"^(\d{1,3})%?$")
LIST_LIMIT = 25

LIST_USAGE = "flag list [filter]"
SHOW_USAGE = "flag show <name>"
ON_USAGE = 'flag on <name> [env] [--reason "…"]'
OFF_USAGE = 'flag off <name> [env] [--reason "…"]'
KILL_USAGE = 'flag kill <name> [env] --reason "…"'
UNKILL_USAGE = 'flag unkill <name> [env] [--reason "…"]'
ROLLOUT_USAGE = 'flag rollout <name> <percent> [env] [--reason "…"]'


@dataclass(frozen=True)
class ListFlags:
    contains: str | None = None


@dataclass(frozen=True)
class ShowFlag:
    name: str


@dataclass(frozen=True)
class SwitchFlag:
    name: str
    on: bool
    environment: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class KillFlag:
    name: str
    environment: str | None
    reason: str


@dataclass(frozen=True)
class UnkillFlag:
    name: str
    environment: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class RolloutFlag:
    name: str
    percent: int
    environment: str | None = None
    reason: str = ""


FlagCommand = SwitchFlag | KillFlag | UnkillFlag | RolloutFlag


def flag_name(token: str, usage: str) -> str:
    """A flag name opsbot will pass on: letters, digits, '.', '_', '-', '~' (what Unleash allows, and no SQL or shell syntax)."""
    if not FLAG_NAME.match(token):
        shown = token if len(token) <= 40 else token[:40] + "…"
        raise UsageError(
            f"`{shown}` is not a flag name: use letters, digits, `.`, `_`, `-` or `~` (up to 100 characters).", f"/ops {usage}"
        )
    return token


def percent(token: str) -> int:
    """``30`` or ``30%`` → 30; anything else, or outside 0..100, is a usage error saying which."""
    match = PERCENT.match(token.strip())
    if not match:
        raise UsageError(
            f"`{token[:20]}` is not a percentage: give a whole number from 0 to 100, like `25`.", f"/ops {ROLLOUT_USAGE}"
        )
    value = int(match.group(1))
    if value > 100:
        raise UsageError(f"`{token[:20]}` is out of range: a rollout is 0 to 100 percent.", f"/ops {ROLLOUT_USAGE}")
    return value


def parse_list(args: Args) -> ListFlags:
    (contains,) = expect(args, LIST_USAGE, required=0, optional=1) or (None,)
    return ListFlags(contains)


def parse_show(args: Args) -> ShowFlag:
    (name,) = expect(args, SHOW_USAGE, required=1)
    return ShowFlag(flag_name(name, SHOW_USAGE))


def _name_env(args: Args, usage: str) -> tuple[str, str | None]:
    name, *env = expect(args, usage, required=1, optional=1)
    return flag_name(name, usage), (env[0] if env else None)


def parse_switch(on: bool) -> Callable[[Args], SwitchFlag]:
    usage = ON_USAGE if on else OFF_USAGE

    def parse(args: Args) -> SwitchFlag:
        name, env = _name_env(args, usage)
        return SwitchFlag(name, on, env, args.options.get("reason", "").strip())

    return parse


def parse_kill(args: Args) -> KillFlag:
    name, env = _name_env(args, KILL_USAGE)
    reason = args.options.get("reason", "").strip()
    if not reason:
        raise UsageError('Say why with `--reason "…"`: the alert and the audit log show it.', f"/ops {KILL_USAGE}")
    return KillFlag(name, env, reason)


def parse_unkill(args: Args) -> UnkillFlag:
    name, env = _name_env(args, UNKILL_USAGE)
    return UnkillFlag(name, env, args.options.get("reason", "").strip())


def parse_rollout(args: Args) -> RolloutFlag:
    name, pct, *env = expect(args, ROLLOUT_USAGE, required=2, optional=1)
    return RolloutFlag(
        flag_name(name, ROLLOUT_USAGE), percent(pct), env[0] if env else None, args.options.get("reason", "").strip()
    )


def _shown(raw: FlagState | None, last: FlagChange | None, native_kill: bool) -> FlagState | None:
    return None if raw is None else effective(raw, last, native_kill)


class FlagCommands:
    """`/ops flag list|show|on|off|kill|unkill|rollout` and the Undo button of a kill alert."""

    def __init__(self, deps: FlagDeps, actions: FlagActions) -> None:
        self._d = deps
        self._actions = actions

    def family(self) -> Family:
        return Family(
            "flags",
            commands=[
                Subcommand(
                    ("flag", "list"),
                    "Flags and their state per environment, with the last change",
                    LIST_USAGE,
                    Role.VIEWER,
                    parse_list,
                    self.list,
                ),
                Subcommand(
                    ("flag", "show"),
                    "One flag: state per environment, guardrails, recent changes",
                    SHOW_USAGE,
                    Role.VIEWER,
                    parse_show,
                    self.show,
                ),
                _change(
                    "on",
                    "Turn a flag on (needs approval when it raises exposure a lot)",
                    ON_USAGE,
                    parse_switch(True),
                    self.switch,
                    self.preview,
                ),
                _change("off", "Turn a flag off", OFF_USAGE, parse_switch(False), self.switch, self.preview),
                _change(
                    "kill",
                    "Kill a flag now, no approval; announced in the alerts channel",
                    KILL_USAGE,
                    parse_kill,
                    self.kill,
                    self.preview,
                ),
                _change(
                    "unkill",
                    "Lift a kill (needs approval where the environment requires it)",
                    UNKILL_USAGE,
                    parse_unkill,
                    self.unkill,
                    self.preview,
                ),
                _change(
                    "rollout",
                    "Set the rollout percentage; big jumps and ceilings need approval",
                    ROLLOUT_USAGE,
                    parse_rollout,
                    self.rollout,
                    self.preview,
                ),
            ],
        )

    def list(self, command: ListFlags, actor: Actor) -> Reply:
        d = self._d
        provider = d.provider
        envs = flag_environments(d.config)
        found = provider.list_flags(envs, command.contains, LIST_LIMIT + 1)
        names = sorted(found)[:LIST_LIMIT]
        with d.uow() as uow:
            latest = uow.flag_history.latest(provider.kind, names)
        rows = []
        for name in names:
            states = [StateIn(env, _shown(found[name].get(env), latest.get((name, env)), provider.kill_switch)) for env in envs]
            changes = [c for (flag, _), c in latest.items() if flag == name]
            rows.append(FlagRow(name, service_of(d.config, name), states, max(changes, key=lambda c: c.at, default=None)))
        return Reply(FlagList(rows, command.contains, len(found) > LIST_LIMIT, provider.kind, d.clock.now()))

    def show(self, command: ShowFlag, actor: Actor) -> Reply:
        d = self._d
        provider = d.provider
        envs = flag_environments(d.config)
        name = command.name
        with d.uow() as uow:
            latest = uow.flag_history.latest(provider.kind, [name])
        rows = []
        for env in envs:
            last = latest.get((name, env))
            rows.append(
                EnvironmentState(env, _shown(provider.state(name, env), last, provider.kill_switch), last, self._rules(env))
            )
        if all(row.state is None for row in rows):
            raise unknown_flag(provider, name, envs[0]) if envs else NotFound("flag", name)
        with d.uow() as uow:
            recent = uow.flag_history.recent(provider.kind, name)
        return Reply(FlagDetail(name, service_of(d.config, name), provider.kind, rows, recent, d.clock.now()))

    def _rules(self, env: str) -> str:
        config = self._d.config
        flags, approvals = config.flags, approvals_for(config, env)
        parts = [f"unkill needs {plural(approvals, 'approval')}" if approvals else "unkill needs no approval"]
        parts.append(f"raising exposure by more than {flags.rollout_max_step} points needs approval")
        if env in flags.rollout_ceiling:
            parts.append(f"above {flags.rollout_ceiling[env]}% needs approval")
        return " · ".join(parts)

    def switch(self, command: SwitchFlag, actor: Actor) -> Reply:
        return self.change(command, actor)

    def kill(self, command: KillFlag, actor: Actor) -> Reply:
        return self.change(command, actor)

    def unkill(self, command: UnkillFlag, actor: Actor) -> Reply:
        return self.change(command, actor)

    def rollout(self, command: RolloutFlag, actor: Actor) -> Reply:
        return self.change(command, actor)

    def change(self, command: FlagCommand, actor: Actor) -> Reply:
        """Apply ``command`` as ``actor``: at once, or as an approval request when it is guarded."""
        env, action, decide = self._decision(command)
        self._d.policy.require(actor, Role.DEPLOYER, f"flag {action}", environment=env)
        return self._actions.perform(actor, name=command.name, env=env, action=action, decide=decide, reason=command.reason)

    def preview(self, command: FlagCommand, actor: Actor) -> Reply:
        """``--dry-run``: the flag's state before and after, and whether it would apply at once or need approval."""
        env, action, decide = self._decision(command)
        self._d.policy.require(actor, Role.DEPLOYER, f"flag {action}", environment=env)
        return self._actions.preview(actor, name=command.name, env=env, action=action, decide=decide, reason=command.reason)

    def _decision(self, command: FlagCommand) -> tuple[str, str, Decide]:
        """The environment, the action's name and how it decides the new state from the current one."""
        config = self._d.config
        env = environment(config, command.environment)
        if isinstance(command, SwitchFlag):
            word = "on" if command.on else "off"

            def switch(before: FlagState, last: FlagChange | None) -> FlagState:
                if before.enabled == command.on:
                    raise NoChange(before, last, f"it is already {word}")
                after = before.with_(enabled=command.on)
                self._guard(env, before, after)
                return after

            return env, word, switch
        if isinstance(command, KillFlag):

            def kill(before: FlagState, last: FlagChange | None) -> FlagState:
                if before.killed:
                    raise NoChange(before, last, "it is already killed")
                return before.with_(killed=True)

            return env, "kill", kill
        if isinstance(command, UnkillFlag):
            required = approvals_for(config, env)

            def unkill(before: FlagState, last: FlagChange | None) -> FlagState:
                if not before.killed:
                    raise NoChange(before, last, "it is not killed")
                after = before.with_(killed=False)
                if required:
                    raise NeedsApproval(
                        before, after, [f"lifting a kill in {env} takes {plural(required, 'approver')}"], required
                    )
                return after

            return env, "unkill", unkill
        wanted = command.percent

        def rollout(before: FlagState, last: FlagChange | None) -> FlagState:
            if before.rollout is None:
                raise Conflict(
                    f"`{command.name}` in `{env}` is targeted by custom rules, not one percentage; change it in the provider itself."
                )
            if before.rollout == wanted:
                raise NoChange(before, last, f"its rollout already is {wanted}%")
            after = before.with_(rollout=wanted)
            self._guard(env, before, after)
            return after

        return env, "rollout", rollout

    def _guard(self, env: str, before: FlagState, after: FlagState) -> None:
        reasons = rollout_guard(self._d.config, env, before, after)
        if reasons:
            raise NeedsApproval(before, after, reasons, max(1, approvals_for(self._d.config, env)))

    def undo_kill(self, actor: Actor, change_id: str) -> Reply:
        """The Undo button on a kill alert: an unkill of that flag in that environment, under the same rules."""
        d = self._d
        d.policy.require_somewhere(actor, Role.DEPLOYER, "flag unkill")  # and in the kill's environment, by unkill
        kind = d.provider.kind  # "flags are not configured" comes first
        with d.uow() as uow:
            kill = uow.flag_history.get(change_id)
        if kill is None or kill.action != "kill" or kill.provider != kind:
            raise NotFound("flag kill", change_id[:20])
        reason = f"Undo of the kill by {kill.actor} at {kill.at:%H:%M} UTC"
        return self.unkill(UnkillFlag(kill.flag, kill.environment, reason), actor)


def _change(
    word: str,
    summary: str,
    usage: str,
    parse: Callable[[Args], Any],
    run: Callable[[Any, Actor], Reply],
    preview: Callable[[Any, Actor], Reply],
) -> Subcommand[Any]:
    """A subcommand that changes a flag: any deployer may ask; the dispatcher audits the intent first."""
    return Subcommand(
        ("flag", word), summary, usage, Role.DEPLOYER, parse, run, options=frozenset({"reason"}), mutates=True, preview=preview
    )
