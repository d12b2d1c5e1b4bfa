"""How a flag change happens: read, decide, compare-and-set, record; and when one needs approval.

Every change runs inside ``FlagHistory.record_change``, which holds a lock on this flag in this
environment in opsbot's database, so concurrent opsbot users are serialized and the later one
decides on the state the earlier one left. The provider write itself is a compare-and-set, so a
change made outside opsbot between our read and our write is detected: we read again and decide
again (a few times), and never overwrite what we did not see.
"""

from __future__ import annotations

import difflib
import fnmatch
import logging
import secrets
from collections.abc import Callable
from typing import Any

from bot.config import OpsConfig, SqlFlagProvider, UnleashFlagProvider
from bot.domain.shared import catalog
from bot.domain.shared.context import Call
from bot.domain.shared.errors import Conflict, NotFound, OpsError, Unavailable, UsageError
from bot.domain.flags.ports import FlagChange, FlagHistory, FlagProvider, FlagState
from bot.domain.shared.ports import AuditEntry

log = logging.getLogger("opsbot.flags")
CAS_ATTEMPTS = 3
Decide = Callable[[FlagState, FlagChange | None], FlagState]


class UnknownFlag(NotFound):
    """No such flag in that environment; close names suggested."""

    def __init__(self, name: str, env: str, suggestions: list[str]) -> None:
        super().__init__("flag", name, suggestions)
        hint = f" Did you mean {', '.join(f'`{s}`' for s in suggestions)}?" if suggestions else ""
        self.message = f"Unknown flag `{name}` in `{env}`.{hint}"
        self.args = (self.message,)


class NoChange(Exception):
    """The flag already is what was asked: nothing to write. ``why`` says so in words."""

    def __init__(self, state: FlagState, last: FlagChange | None, why: str) -> None:
        super().__init__(why)
        self.state, self.last, self.why = state, last, why


class NeedsApproval(Exception):
    """The change is guarded: it may happen only once approved. Nothing was written."""

    def __init__(self, before: FlagState, after: FlagState, reasons: list[str], required: int) -> None:
        super().__init__("; ".join(reasons))
        self.before, self.after, self.reasons, self.required = before, after, reasons, required


def ports(call: Call) -> tuple[FlagProvider, FlagHistory]:
    """The flag provider and opsbot's flag history, or a clear error when flags are not configured."""
    provider, history = call.services.flags, call.services.flag_history
    if provider is None or history is None:
        raise OpsError("Flags are not configured here: set `flags.provider` in the ops config (see docs/flags.md).")
    return provider, history


def flag_environments(config: OpsConfig) -> list[str]:
    """The environments flags are managed in: ``flags.environments``, else those the provider knows."""
    flags = config.flags
    if flags.environments:
        return list(flags.environments)
    if isinstance(flags.provider, SqlFlagProvider):
        return [env for env in config.environments if env in flags.provider.databases]
    if isinstance(flags.provider, UnleashFlagProvider) and flags.provider.environments:
        return [env for env in config.environments if env in flags.provider.environments]
    return list(config.environments)


def environment(config: OpsConfig, name: str | None) -> str:
    """The environment a command meant: the one named, the configured default, or the only one."""
    known = flag_environments(config)
    if name is None:
        if config.flags.default_environment:
            return config.flags.default_environment
        if len(known) == 1:
            return known[0]
        raise UsageError(f"Name the environment: one of {', '.join(f'`{e}`' for e in known)}.")
    env = name.lower()
    if env not in known:
        raise NotFound("flag environment", name, catalog.suggest(env, known) or known[:3])
    return env


def service_of(config: OpsConfig, flag: str) -> str | None:
    """The service a flag belongs to: an exact entry in ``flags.services`` first, then the first glob that matches."""
    services = config.flags.services
    if flag in services:
        return services[flag]
    return next((svc for pattern, svc in services.items() if fnmatch.fnmatchcase(flag, pattern)), None)


def effective(raw: FlagState, last: FlagChange | None, native_kill: bool) -> FlagState:
    """The state as opsbot shows it: a provider without a kill switch keeps its kills in opsbot's history."""
    if native_kill or last is None or not last.after.killed or raw.enabled:
        # A flag switched on in the provider since our kill is no longer killed: the provider is the truth.
        return raw if native_kill else raw.with_(killed=False)
    return raw.with_(enabled=last.after.enabled, killed=True)


def provider_view(state: FlagState, native_kill: bool) -> FlagState:
    """What to write to the provider: without a kill switch, killed means off."""
    if native_kill:
        return state
    return state.with_(enabled=state.enabled and not state.killed, killed=False)


def unknown_flag(provider: FlagProvider, name: str, env: str) -> UnknownFlag:
    """Unknown flag, with up to three close names from the provider (flag names are case-sensitive)."""
    names = provider.names(env)
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    if not close:
        by_lower = {n.lower(): n for n in names}
        close = [by_lower[n] for n in difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.5)]
    return UnknownFlag(name, env, close)


def current(call: Call, name: str, env: str) -> tuple[FlagState, FlagChange | None]:
    """The flag's state in ``env`` now, and opsbot's last change to it."""
    provider, history = ports(call)
    raw = provider.state(name, env)
    if raw is None:
        raise unknown_flag(provider, name, env)
    last = history.latest(provider.kind, [name]).get((name, env))
    return effective(raw, last, provider.kill_switch), last


def apply_change(
    call: Call, *, name: str, env: str, action: str, decide: Decide, reason: str, actor: str,
    approved_by: tuple[str, ...] = (),
) -> FlagChange:
    """Decide on the current state and write it with compare-and-set; raises NoChange, NeedsApproval or a typed error."""
    provider, history = ports(call)

    def attempt(last: FlagChange | None) -> FlagChange:
        for _ in range(CAS_ATTEMPTS):
            raw = provider.state(name, env)
            if raw is None:
                raise unknown_flag(provider, name, env)
            before = effective(raw, last, provider.kill_switch)
            after = decide(before, last)
            if after == before:
                raise NoChange(before, last, "nothing to change")
            if provider.compare_and_set(name, env, raw, provider_view(after, provider.kill_switch)):
                return FlagChange(
                    id=secrets.token_hex(8), provider=provider.kind, flag=name, environment=env, action=action,
                    actor=actor, reason=reason, before=before, after=after, at=call.services.clock.now(),
                    approved_by=approved_by,
                )
        raise Conflict(f"`{name}` in `{env}` kept changing outside opsbot while we tried to change it; nothing was changed. Try again.")

    change = history.record_change(provider.kind, name, env, attempt)
    assert change is not None  # attempt never returns None
    return change


def approvals_for(config: OpsConfig, env: str) -> int:
    settings = config.environments.get(env)
    return settings.approvals if settings else 0


def timeout_for(config: OpsConfig, env: str) -> int:
    settings = config.environments.get(env)
    return settings.approval_timeout_minutes if settings else 30


def rollout_guard(config: OpsConfig, env: str, before: FlagState, after: FlagState) -> list[str]:
    """Why raising exposure from ``before`` to ``after`` needs approval; empty when it does not.

    Only increases are guarded: lowering exposure is how you back out, and must never wait.
    """
    old, new = before.exposure, after.exposure
    if new <= old:
        return []
    reasons = []
    step = config.flags.rollout_max_step
    if new - old > step:
        reasons.append(f"a jump of {new - old} points is more than the {step}-point step")
    ceiling = config.flags.rollout_ceiling.get(env)
    if ceiling is not None and new > ceiling:
        reasons.append(f"{new}% is above the {ceiling}% ceiling in {env}")
    return reasons


def audit(call: Call, action: str, outcome: str, *, flag: str, env: str, params: dict[str, Any], error: str | None = None) -> None:
    """An explicit audit row for a flag change, with old → new; a lost audit log is logged, not raised."""
    entry = AuditEntry(
        actor=call.actor.user_id, action=f"flag.{action}", outcome=outcome, target=f"{flag}/{env}",
        params={"flag": flag, **params}, error=error, channel=call.actor.channel_id, request_id=call.actor.request_id,
        source=call.actor.source, service=service_of(call.config, flag), environment=env,
    )
    try:
        call.services.audit.record(entry)
    except Unavailable as exc:
        log.error("audit log unavailable (%s); entry: %s", exc.detail or exc.what, entry)


def change_params(change: FlagChange) -> dict[str, Any]:
    return {
        "change": change.id, "provider": change.provider, "by": change.actor, "reason": change.reason,
        "before": change.before.as_dict() if change.before else None, "after": change.after.as_dict(),
        "approved_by": list(change.approved_by),
    }
