"""`/ops locks`, `/ops lock` and `/ops unlock`: who holds which deploy lock, and taking or breaking one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.config.durations import format_duration, parse_duration
from bot.domain.locks.deps import LockDeps
from bot.domain.locks.messages import HoldEnded, LockBroken, LockList, LockTaken
from bot.domain.locks.ports import MAX_MANUAL_LOCK, LockInfo
from bot.domain.locks.waiting import DeployLocks
from bot.domain.shared import catalog
from bot.domain.shared.commands import Args, Subcommand, expect, no_args
from bot.domain.shared.errors import Conflict, OpsError, UsageError
from bot.domain.shared.family import Family, JobSpec
from bot.domain.shared.messages import DryRunReport, WouldHappen
from bot.domain.shared.policy import Actor, Role
from bot.domain.shared.ports import Reply

LOCK_USAGE = 'lock <service> <env> [for=1h] --reason "…"'
UNLOCK_USAGE = 'unlock <service> <env> --reason "…"'
HOLD_ENDED_JOB = "locks.hold_ended"


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


def _reason(args: Args, usage: str) -> str:
    reason = args.options.get("reason", "").strip()
    if not reason:
        raise UsageError('Say why with `--reason "…"`.', f"/ops {usage}")
    return reason


def parse_list(args: Args) -> ListLocks:
    no_args(args)
    return ListLocks()


def parse_take(args: Args) -> TakeLock:
    service, env = expect(args, LOCK_USAGE, required=2)
    try:
        duration = parse_duration(args.options.get("for", "1h"), maximum=MAX_MANUAL_LOCK, argument="for=")
    except ValueError as exc:
        raise UsageError(str(exc) + ".", f"/ops {LOCK_USAGE}") from None
    return TakeLock(service, env, _reason(args, LOCK_USAGE), int(duration.total_seconds()))


def parse_unlock(args: Args) -> ForceUnlock:
    service, env = expect(args, UNLOCK_USAGE, required=2)
    return ForceUnlock(service, env, _reason(args, UNLOCK_USAGE))


def hold_key(name: str, fence: int) -> str:
    """The job key of the "hold ended" announcement of one hold."""
    return f"lock-hold:{name}:{fence}"


class LockCommands:
    """The lock subcommands and the job that announces the end of a hold taken by hand."""

    def __init__(self, deps: LockDeps, deploy_locks: DeployLocks) -> None:
        self._d = deps
        self._deploy_locks = deploy_locks

    def family(self) -> Family:
        return Family(
            "locks",
            commands=[
                Subcommand(
                    ("locks",),
                    "List held deploy locks: who, what, since when, until when",
                    "locks",
                    Role.VIEWER,
                    parse_list,
                    self.list,
                ),
                Subcommand(
                    ("lock",),
                    "Hold a service's deploys in an environment for a while",
                    LOCK_USAGE,
                    Role.DEPLOYER,
                    parse_take,
                    self.take,
                    options=frozenset({"reason"}),
                    keys=frozenset({"for"}),
                    mutates=True,
                    preview=self.preview_take,
                ),
                Subcommand(
                    ("unlock",),
                    "Break a deploy lock; the holder is told",
                    UNLOCK_USAGE,
                    Role.ADMIN,
                    parse_unlock,
                    self.unlock,
                    options=frozenset({"reason"}),
                    mutates=True,
                    preview=self.preview_unlock,
                ),
            ],
            jobs=[JobSpec(HOLD_ENDED_JOB, self.hold_ended)],
        )

    def list(self, command: ListLocks, actor: Actor) -> Reply:
        return Reply(LockList(self._d.locks.held(), self._d.clock.now()))

    def take(self, command: TakeLock, actor: Actor) -> Reply:
        service, env = self._target(command.service, command.environment, actor, Role.DEPLOYER, "lock")
        locks = self._d.locks
        name = catalog.lock_name(service, env)
        lease = locks.acquire(
            name, holder=actor.user_id, purpose=f"held by hand: {command.reason}", ttl_seconds=command.duration_seconds
        )
        if lease is None:  # the same answer a deploy gets: who holds it, for what, and "Notify me when free"
            return self._deploy_locks.refusal(name, f"hold on {name}")
        info = locks.holder(name)
        if info is None:
            raise OpsError("The lock expired immediately; check the duration.")
        payload = {"name": name, "fence": lease.fence, "holder": actor.user_id, "reason": command.reason}
        self._d.jobs.schedule(info.expires_at, HOLD_ENDED_JOB, payload, key=hold_key(name, lease.fence))
        return Reply(LockTaken(info, command.reason), visibility="in_channel")

    def preview_take(self, command: TakeLock, actor: Actor) -> Reply:
        """``--dry-run`` of `/ops lock`: taken for how long, or refused because of whom; nothing is taken."""
        service, env = self._target(command.service, command.environment, actor, Role.DEPLOYER, "lock")
        d = self._d
        name = catalog.lock_name(service, env)
        held = d.locks.holder(name)
        title = f"lock {service} in {env}"
        if held is not None:
            return Reply(
                DryRunReport(title, [_held_step(held)], refused=f"`{name}` is held; you could ask to be told when it is free.")
            )
        until = d.clock.now() + timedelta(seconds=command.duration_seconds)
        steps = [
            WouldHappen(
                "Lock",
                f"{name} is free: it would be held by you for {format_duration(timedelta(seconds=command.duration_seconds))}, "
                f"until {until:%Y-%m-%d %H:%M} UTC, for: {command.reason}",
            ),
            WouldHappen("Deploys", f"deploys and rollbacks of {service} to {env} would wait for it (or be refused) until then"),
            WouldHappen(
                "Announcements", f"posted here for everyone; when the hold ends, said in <#{d.config.channels.deployments}>"
            ),
        ]
        return Reply(DryRunReport(title, steps))

    def preview_unlock(self, command: ForceUnlock, actor: Actor) -> Reply:
        """``--dry-run`` of `/ops unlock`: whose lock would be broken and who would be told; nothing is released."""
        service, env = self._target(command.service, command.environment, actor, Role.ADMIN, "unlock")
        name = catalog.lock_name(service, env)
        held = self._d.locks.holder(name)
        title = f"unlock {service} in {env}"
        if held is None:
            raise Conflict(f"No lock is held on `{service}` in `{env}`.")
        told = (
            "you hold it yourself, so nobody is messaged"
            if held.holder == actor.user_id
            else "they would get a direct message with your reason:"
        )
        steps = [
            _held_step(held),
            WouldHappen(
                "Released", f"at once; a deploy holding it could no longer record its result (fencing token {held.fence})"
            ),
            WouldHappen("Holder", told, () if held.holder == actor.user_id else (held.holder,)),
            WouldHappen("Waiting", "everyone who asked to be told when it is free would be messaged"),
        ]
        return Reply(DryRunReport(title, steps))

    def hold_ended(self, actor: Actor, payload: dict[str, Any]) -> None:
        """A hand-taken lock's time is up: say so, unless someone took the lock again since."""
        current = self._d.locks.holder(payload["name"])
        if current is not None and current.fence == payload["fence"]:
            return  # still held by the same hold (clock skew): the lock's own TTL will end it
        self._d.notifier.post(
            self._d.config.channels.deployments, HoldEnded(payload["name"], payload["holder"], payload["reason"])
        )
        if current is None:
            self._deploy_locks.notify_waiters(payload["name"], f"the hold by {payload['holder']} ended")

    def unlock(self, command: ForceUnlock, actor: Actor) -> Reply:
        service, env = self._target(command.service, command.environment, actor, Role.ADMIN, "unlock")
        released = self._d.locks.force_release(catalog.lock_name(service, env))
        if released is None:
            raise Conflict(f"No lock is held on `{service}` in `{env}`.")
        self._d.jobs.cancel(hold_key(released.name, released.fence))
        # A deploy that held it can no longer record its result (fencing); those waiting may go ahead.
        self._deploy_locks.notify_waiters(released.name, f"it was force-released by an admin: {command.reason}")
        told = True
        if released.holder != actor.user_id:
            try:
                self._d.notifier.dm(released.holder, LockBroken(released, actor.user_id, command.reason))
            except OpsError:
                told = False
        return Reply(LockBroken(released, actor.user_id, command.reason, holder_told=told), visibility="in_channel")

    def _target(self, service: str, env: str, actor: Actor, role: Role, action: str) -> tuple[str, str]:
        """The service and environment, checked, and the actor's ``role`` there; raises NotFound or NotPermitted."""
        name, _ = catalog.service(self._d.config, service)
        environment = catalog.environment(self._d.config, name, env)
        self._d.policy.require(actor, role, action, environment=environment)
        return name, environment


def _held_step(held: LockInfo) -> WouldHappen:
    return WouldHappen(
        "Lock",
        f"{held.name} is held since {held.since:%H:%M} UTC until {held.expires_at:%H:%M} UTC ({held.purpose}) by",
        (held.holder,),
    )
