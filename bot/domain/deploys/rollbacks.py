"""`/ops rollback` and the Rollback button: back to the last version that deployed and verified.

A rollback is a deploy of an earlier version with its own approval policy (``rollback_approvals``),
recorded with the deploy it undoes. It runs through the same lock, job, provider and verification;
when it succeeds, the undone deploy becomes ``rolled_back``. Rollbacks may run during freezes.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.deploys import planning as deploy_plan

from bot.domain.deploys import support as deploy_support

from bot.domain.deploys import requests as deploys
from bot.domain.approvals.service import ApprovalKind
from bot.domain.shared.commands import Args, Subcommand
from bot.domain.shared.context import Call
from bot.domain.deploys.ports import DeployKind, DeployState
from bot.domain.shared.errors import Conflict, NotFound, UsageError
from bot.domain.shared.policy import Role
from bot.domain.shared.ports import Reply

USAGE = 'rollback <service> [env] [to <version>] --reason "…"'


@dataclass(frozen=True)
class StartRollback:
    service: str
    environment: str | None
    version: str | None
    reason: str


def parse(args: Args) -> StartRollback:
    words, version = deploys.split_to(args, USAGE)
    if not words:
        raise UsageError("Name the service to roll back.", f"/ops {USAGE}")
    if len(words) > 2:
        raise UsageError(f"Unexpected argument(s): `{' '.join(words[2:])[:80]}`.", f"/ops {USAGE}")
    reason = args.options.get("reason", "").strip()
    if not reason:
        raise UsageError('Say why with `--reason "…"`: it goes into the announcement.', f"/ops {USAGE}")
    return StartRollback(words[0], words[1] if len(words) > 1 else None, version, reason)


def run(command: StartRollback, call: Call) -> Reply:
    return request(call, command.service, command.environment, command.version, command.reason)


def request(call: Call, service: str, environment: str | None, version: str | None, reason: str,
            undoing: str | None = None) -> Reply:
    """Check the target and open the rollback request (the same path as a deploy)."""
    name, spec, env = deploy_plan.resolve(call, service, environment)
    current = deploy_support.store(call).last_ran(name, env)
    if undoing is not None and (current is None or current.id != undoing):
        latest = f" (`{current.id}`, {current.version}, ran since)" if current else ""
        raise Conflict(f"That deploy is no longer the latest in {env}{latest}; use `/ops rollback {name} {env}` to go back from there.")
    if version is not None:
        version = deploy_plan.check_version(name, spec, version)
        if current is not None and current.version == version and current.state is DeployState.SUCCEEDED:
            raise Conflict(f"`{name}` already runs {version} in {env} (`{current.id}`).")
    else:
        version = default_target(call, name, env)
    plan = deploy_plan.build(call, kind=DeployKind.ROLLBACK, service=name, spec=spec, environment=env, version=version,
                             reason=reason, hotfix=False, rollback_of=current.id if current else None)
    return deploys.open_request(call, plan)


def default_target(call: Call, service: str, environment: str) -> str:
    """The last version that deployed and verified successfully before the current one."""
    store = deploy_support.store(call)
    current = store.last_ran(service, environment)
    example = f'`/ops rollback {service} {environment} to <version> --reason "…"`'
    if current is None or current.started_at is None:
        raise Conflict(f"Nothing has been deployed to `{service}` in {environment} through opsbot yet, so there is no "
                       f"earlier version to go back to. Name one: {example}.")
    good = store.last_good(service, environment, before=current.started_at, other_than=current.version)
    if good is None:
        raise Conflict(f"There is no version of `{service}` before {current.version} that deployed and verified successfully "
                       f"in {environment}. Name one: {example}.")
    return good.version


def from_button(call: Call, deploy_id: str) -> Reply:
    """The Rollback button on a failure announcement: the same request, filled in from the failed deploy."""
    call.services.policy.require(call.actor, Role.DEPLOYER, "rollback")
    failed = deploy_support.store(call).get(deploy_id)
    if failed is None:
        raise NotFound("deploy", deploy_id[:20])
    if failed.state is DeployState.ROLLED_BACK:
        raise Conflict(f"`{failed.id}` was already rolled back (by `{failed.rolled_back_by}`).")
    reason = f"{failed.version} failed in {failed.environment} ({failed.id}): {failed.detail or 'see the announcement'}"
    return request(call, failed.service, failed.environment, None, reason[:500], undoing=failed.id)


APPROVAL_KINDS = [ApprovalKind("rollback", deploys.on_approved, deploys.on_closed)]
COMMANDS: list[Subcommand] = [
    Subcommand(("rollback",), "Roll a service back to its last good version (or a named one)", USAGE, Role.DEPLOYER, parse, run,
               options=frozenset({"reason"}), mutates=True),
]
