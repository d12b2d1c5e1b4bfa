"""How a flag change happens: read, decide, compare-and-set, record; and when one needs approval.

Every change runs in one unit of work that first locks this flag in this environment in opsbot's
database (``lock_head``), so concurrent opsbot users are serialized and the later one decides on
the state the earlier one left. The provider write itself is a compare-and-set, so a
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
from bot.domain.flags.deps import FlagDeps
from bot.domain.flags.model import FlagChange, FlagState
from bot.domain.flags.ports import FlagProvider
from bot.domain.shared import catalog
from bot.domain.shared.audit import entry, record_quietly
from bot.domain.shared.errors import Conflict, NotFound, OpsError, Unavailable, UsageError
from bot.domain.shared.policy import Actor

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


def apply_change(
    d: FlagDeps,
    *,
    name: str,
    env: str,
    action: str,
    decide: Decide,
    reason: str,
    actor: str,
    approved_by: tuple[str, ...] = (),
) -> FlagChange:
    """Decide on the current state and write it with compare-and-set; raises NoChange, NeedsApproval or a typed error."""
    provider = d.provider
    with d.uow() as uow:
        last = uow.flag_history.lock_head(provider.kind, name, env)
        change = _attempt(
            d, last, name=name, env=env, action=action, decide=decide, reason=reason, actor=actor, approved_by=approved_by
        )
        try:
            uow.flag_history.add(change)
            uow.commit()
        except Exception as exc:
            # The provider already has the change: say so rather than "nothing was changed".
            why = (
                exc.detail
                if isinstance(exc, Unavailable) and exc.detail
                else (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            )
            raise OpsError(
                f"The change to `{name}` in `{env}` was made, but opsbot's database could not record it ({why[:120]})."
            ) from None
    return change


def _attempt(
    d: FlagDeps,
    last: FlagChange | None,
    *,
    name: str,
    env: str,
    action: str,
    decide: Decide,
    reason: str,
    actor: str,
    approved_by: tuple[str, ...],
) -> FlagChange:
    """Read, decide, compare-and-set; again (a few times) when the flag changed outside opsbot in between."""
    provider = d.provider
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
                id=secrets.token_hex(8),
                provider=provider.kind,
                flag=name,
                environment=env,
                action=action,
                actor=actor,
                reason=reason,
                before=before,
                after=after,
                at=d.clock.now(),
                approved_by=approved_by,
            )
    raise Conflict(
        f"`{name}` in `{env}` kept changing outside opsbot while we tried to change it; nothing was changed. Try again."
    )


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


def audit(
    d: FlagDeps, actor: Actor, action: str, outcome: str, *, flag: str, env: str, params: dict[str, Any], error: str | None = None
) -> None:
    """An explicit audit row for a flag change, with old → new; a lost audit log is logged, not raised."""
    record_quietly(
        d.audit,
        entry(
            actor,
            f"flag.{action}",
            outcome,
            target=f"{flag}/{env}",
            params={"flag": flag, **params},
            error=error,
            service=service_of(d.config, flag),
            environment=env,
        ),
    )


def change_params(change: FlagChange) -> dict[str, Any]:
    return {
        "change": change.id,
        "provider": change.provider,
        "by": change.actor,
        "reason": change.reason,
        "before": change.before.as_dict() if change.before else None,
        "after": change.after.as_dict(),
        "approved_by": list(change.approved_by),
    }
