"""`/ops locks`, `/ops lock` and `/ops unlock`: who holds which deploy lock, and taking or breaking one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from bot.domain.shared import catalog

from bot.domain.locks import waiting as deploy_locks
from bot.domain.shared.commands import Args, Subcommand, expect, no_args
from bot.domain.shared.context import Call
from bot.domain.dispatch import JobSpec
from bot.config.durations import parse_duration
from bot.domain.shared.errors import Conflict, OpsError, UsageError
from bot.domain.shared.policy import Role
from bot.domain.shared.ports import LockInfo, Reply

MAX_MANUAL_LOCK = timedelta(days=7)


@dataclass(frozen=True)
class ListLocks:
    pass


@dataclass(frozen=True)
class TakeLock:
    service: str
    environment: str
    reason: str
    duration_seconds: int


@dataclass(frozen=True)
class ForceUnlock:
    service: str
    environment: str
    reason: str


@dataclass(frozen=True)
class LockList:
    template: ClassVar[str] = "locks/list"
    locks: list[LockInfo]
    now: datetime


@dataclass(frozen=True)
class LockTaken:
    template: ClassVar[str] = "locks/taken"
    lock: LockInfo
    reason: str


@dataclass(frozen=True)
class LockHeldNotice:
    """Someone else holds the lock: who, for what, since when."""

    template: ClassVar[str] = "locks/held"
    lock: LockInfo
    now: datetime


@dataclass(frozen=True)
class LockBroken:
    """Told to the admin, and to the holder by DM."""

    template: ClassVar[str] = "locks/broken"
    lock: LockInfo
    by: str
    reason: str
    holder_told: bool = True


@dataclass(frozen=True)
class HoldEnded:
    """Posted in the deployments channel when a lock taken by hand runs out."""

    template: ClassVar[str] = "locks/hold_ended"
    name: str
    holder: str
    reason: str


def _reason(args: Args, usage: str) -> str:
    reason = args.options.get("reason", "").strip()
    if not reason:
        raise UsageError('Say why with `--reason "…"`.', f"/ops {usage}")
    return reason


def parse_list(args: Args) -> ListLocks:
    no_args(args)
    return ListLocks()


def run_list(command: ListLocks, call: Call) -> Reply:
    return Reply(LockList(call.services.locks.held(), call.services.clock.now()))


LOCK_USAGE = 'lock <service> <env> [for=1h] --reason "…"'
UNLOCK_USAGE = 'unlock <service> <env> --reason "…"'


def parse_take(args: Args) -> TakeLock:
    service, env = expect(args, LOCK_USAGE, required=2)
    try:
        duration = parse_duration(args.options.get("for", "1h"), maximum=MAX_MANUAL_LOCK)
    except ValueError as exc:
        raise UsageError(str(exc) + ".", f"/ops {LOCK_USAGE}") from None
    return TakeLock(service, env, _reason(args, LOCK_USAGE), int(duration.total_seconds()))


def run_take(command: TakeLock, call: Call) -> Reply:
    service, env = _target(call, command.service, command.environment)
    locks = call.services.locks
    name = catalog.lock_name(service, env)
    lease = locks.acquire(name, holder=call.actor.user_id, purpose=f"held by hand: {command.reason}", ttl_seconds=command.duration_seconds)
    if lease is None:  # the same answer a deploy gets: who holds it, for what, and "Notify me when free"
        return deploy_locks.refusal(call, name, f"hold on {name}")
    info = locks.holder(name)
    if info is None:
        raise OpsError("The lock expired immediately; check the duration.")
    payload = {"name": name, "fence": lease.fence, "holder": call.actor.user_id, "reason": command.reason}
    call.services.jobs.schedule(info.expires_at, "locks.hold_ended", payload, key=_hold_key(name, lease.fence))
    return Reply(LockTaken(info, command.reason), visibility="in_channel")


def _hold_key(name: str, fence: int) -> str:
    return f"lock-hold:{name}:{fence}"


def hold_ended(call: Call, payload: dict[str, Any]) -> None:
    """A hand-taken lock's time is up: say so, unless someone took the lock again since."""
    current = call.services.locks.holder(payload["name"])
    if current is not None and current.fence == payload["fence"]:
        return  # still held by the same hold (clock skew): the lock's own TTL will end it
    call.services.notifier.post(call.config.channels.deployments, HoldEnded(payload["name"], payload["holder"], payload["reason"]))
    if current is None:
        deploy_locks.notify_waiters(call, payload["name"], f"the hold by {payload['holder']} ended")


def parse_unlock(args: Args) -> ForceUnlock:
    service, env = expect(args, UNLOCK_USAGE, required=2)
    return ForceUnlock(service, env, _reason(args, UNLOCK_USAGE))


def run_unlock(command: ForceUnlock, call: Call) -> Reply:
    service, env = _target(call, command.service, command.environment)
    released = call.services.locks.force_release(catalog.lock_name(service, env))
    if released is None:
        raise Conflict(f"No lock is held on `{service}` in `{env}`.")
    call.services.jobs.cancel(_hold_key(released.name, released.fence))
    # A deploy that held it can no longer record its result (fencing); those waiting may go ahead.
    deploy_locks.notify_waiters(call, released.name, f"it was force-released by an admin: {command.reason}")
    told = True
    if released.holder != call.actor.user_id:
        try:
            call.services.notifier.dm(released.holder, LockBroken(released, call.actor.user_id, command.reason))
        except OpsError:
            told = False
    return Reply(LockBroken(released, call.actor.user_id, command.reason, holder_told=told), visibility="in_channel")


def _target(call: Call, service: str, env: str) -> tuple[str, str]:
    name, _ = catalog.service(call.config, service)
    return name, catalog.environment(call.config, name, env)


JOBS = [JobSpec("locks.hold_ended", hold_ended)]
COMMANDS: list[Subcommand] = [
    Subcommand(("locks",), "List held deploy locks: who, what, since when, until when", "locks", Role.VIEWER, parse_list, run_list),
    Subcommand(("lock",), "Hold a service's deploys in an environment for a while", LOCK_USAGE, Role.DEPLOYER, parse_take, run_take,
               options=frozenset({"reason"}), keys=frozenset({"for"}), mutates=True),
    Subcommand(("unlock",), "Break a deploy lock; the holder is told", UNLOCK_USAGE, Role.ADMIN, parse_unlock, run_unlock,
               options=frozenset({"reason"}), mutates=True),
]
