"""`/ops rollback` and the Rollback button: back to the last version that deployed and verified.

A rollback is a deploy of an earlier version with its own approval policy (``rollback_approvals``),
recorded with the deploy it undoes. It runs through the same lock, job, provider and verification;
when it succeeds, the undone deploy becomes ``rolled_back``. Rollbacks may run during freezes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.domain.deploys import planning, support
from bot.domain.deploys.deps import DeployDeps
from bot.domain.deploys.model import Deploy, DeployKind, DeployState
from bot.domain.deploys.planning import Plan
from bot.domain.deploys.requests import DeployRequests, split_to
from bot.domain.shared.commands import Args
from bot.domain.shared.errors import Conflict, NotFound, Refused, UsageError
from bot.domain.shared.policy import Actor, Role
from bot.domain.shared.ports import Reply
from bot.domain.shared.text import word_for

USAGE = 'rollback <service> [env] [to <version>] --reason "…"'


@dataclass(frozen=True)
class StartRollback:
    service: str
    environment: str | None
    version: str | None
    reason: str


def parse(args: Args) -> StartRollback:
    words, version = split_to(args, USAGE)
    if not words:
        raise UsageError("Name the service to roll back.", f"/ops {USAGE}")
    if len(words) > 2:
        raise UsageError(f"Unexpected {word_for(len(words) - 2, 'argument')}: `{' '.join(words[2:])[:80]}`.", f"/ops {USAGE}")
    reason = args.options.get("reason", "").strip()
    if not reason:
        raise UsageError('Say why with `--reason "…"`: it goes into the announcement.', f"/ops {USAGE}")
    return StartRollback(words[0], words[1] if len(words) > 1 else None, version, reason)


class Rollbacks:
    """`/ops rollback` and the Rollback button: a rollback request through the same path as a deploy."""

    def __init__(self, deps: DeployDeps, requests: DeployRequests) -> None:
        self._d = deps
        self._requests = requests

    def run(self, command: StartRollback, actor: Actor) -> Reply:
        return self.request(actor, command.service, command.environment, command.version, command.reason)

    def preview(self, command: StartRollback, actor: Actor) -> Reply:
        """``--dry-run``: the version it would go back to, who would approve, the lock, what the provider would run."""
        plan = self.plan(actor, command.service, command.environment, command.version, command.reason)
        return self._requests.dry_run(plan, hotfix_asked=False)

    def request(
        self, actor: Actor, service: str, environment: str | None, version: str | None, reason: str, undoing: str | None = None
    ) -> Reply:
        """Check the target and open the rollback request (the same path as a deploy)."""
        return self._requests.open(actor, self.plan(actor, service, environment, version, reason, undoing))

    def plan(
        self, actor: Actor, service: str, environment: str | None, version: str | None, reason: str, undoing: str | None = None
    ) -> Plan:
        """The rollback request's plan: target checked, version chosen (the last good one unless named); changes nothing."""
        d = self._d
        name, spec, env = planning.resolve(d, service, environment)
        current = planning.last_ran(d, name, env)
        if undoing is not None and (current is None or current.id != undoing):
            latest = f" (`{current.id}`, {current.version}, ran since)" if current else ""
            raise Conflict(
                f"That deploy is no longer the latest in {env}{latest}; use `/ops rollback {name} {env}` to go back from there."
            )
        if version is not None:
            version = planning.check_version(name, spec, version)
            if current is not None and current.version == version and current.state is DeployState.SUCCEEDED:
                raise Conflict(f"`{name}` already runs {version} in {env} (`{current.id}`).")
        else:
            version = self.default_target(name, env)
        return planning.build(
            d,
            actor,
            kind=DeployKind.ROLLBACK,
            service=name,
            spec=spec,
            environment=env,
            version=version,
            reason=reason,
            hotfix=False,
            rollback_of=current.id if current else None,
        )

    def default_target(self, service: str, environment: str) -> str:
        """The last version that deployed and verified successfully before the current one."""
        current = planning.last_ran(self._d, service, environment)
        example = f'`/ops rollback {service} {environment} to <version> --reason "…"`'
        if current is None or current.started_at is None:
            raise Conflict(
                f"Nothing has been deployed to `{service}` in {environment} through opsbot yet, so there is no "
                f"earlier version to go back to. Name one: {example}."
            )
        with self._d.uow() as uow:
            good = uow.deploys.last_good(service, environment, before=current.started_at, other_than=current.version)
        if good is None:
            raise Conflict(
                f"There is no version of `{service}` before {current.version} that deployed and verified successfully "
                f"in {environment}. Name one: {example}."
            )
        return good.version

    def from_button(self, actor: Actor, deploy_id: str) -> Reply:
        """The Rollback button on a failure announcement: the same request, filled in from the failed deploy."""
        failed = self._clicked(actor, deploy_id)
        if failed.state is not DeployState.FAILED or failed.is_rollback:
            # The button is only on failure announcements: a click naming anything else was not made on one.
            raise Refused(
                f"`{failed.id}` ({failed.kind.value} of {failed.version} to {failed.environment}) did not fail: it is "
                f"{failed.state.value.replace('_', ' ')}. The Rollback button goes back from a failed deploy; "
                f'to go back from here, use `/ops rollback {failed.service} {failed.environment} --reason "…"`.'
            )
        reason = f"{failed.version} failed in {failed.environment} ({failed.id}): {failed.detail or 'see the announcement'}"
        return self.request(actor, failed.service, failed.environment, None, reason[:500], undoing=failed.id)

    def from_change(self, actor: Actor, deploy_id: str) -> Reply:
        """Roll back on a "what changed" list: go back from that deploy or rollback to the version before it, only
        while it is the latest that ran in its environment (re-checked here, the button carries only the id)."""
        deploy = self._clicked(actor, deploy_id)
        if deploy.state not in (DeployState.SUCCEEDED, DeployState.FAILED):
            raise Refused(
                f"`{deploy.id}` ({deploy.kind.value} of {deploy.version} to {deploy.environment}) is "
                f"{deploy.state.value.replace('_', ' ')}: only a deploy that ran to an end is rolled back from here."
            )
        what = "rollback to" if deploy.is_rollback else "deploy of"
        reason = f"back from the {what} {deploy.version} in {deploy.environment} ({deploy.id}), from a what-changed list"
        return self.request(actor, deploy.service, deploy.environment, None, reason, undoing=deploy.id)

    def _clicked(self, actor: Actor, deploy_id: str) -> Deploy:
        """The deploy a Roll back button names (its only value), once the clicker is a deployer in its environment
        and it was not rolled back already; raises NotPermitted, NotFound or Conflict."""
        self._d.policy.require_somewhere(actor, Role.DEPLOYER, "rollback")
        deploy = support.get(self._d, deploy_id)
        if deploy is None:
            raise NotFound("deploy", deploy_id[:20])
        self._d.policy.require(actor, Role.DEPLOYER, "rollback", environment=deploy.environment)
        if deploy.state is DeployState.ROLLED_BACK:
            raise Conflict(f"`{deploy.id}` was already rolled back (by `{deploy.rolled_back_by}`).")
        return deploy

    def from_health_alert(self, actor: Actor, alert_id: str) -> Reply:
        """A metric alert's "Roll back the last deploy of <service>" button: roll back whatever last ran in the
        alert's environment, to the version before it (the same request as `/ops rollback`)."""
        self._d.policy.require_somewhere(actor, Role.DEPLOYER, "rollback")
        alert = self._d.health_alert(alert_id)
        service, environment = str(alert["service"]), str(alert["environment"])
        self._d.policy.require(actor, Role.DEPLOYER, "rollback", environment=environment)
        # A second click, or a deploy since the alert: "the last deploy" is no longer the one the alert was about.
        with self._d.uow() as uow:
            newest = uow.deploys.history(service, environment, 1)
        if newest and newest[0].requested_at > datetime.fromisoformat(str(alert["at"])):
            since = newest[0]
            raise Conflict(
                f"`{service}` in {environment} has changed since this alert: `{since.id}` ({since.kind.value} of "
                f"{since.version}, {since.state.value.replace('_', ' ')}). To go back from there, use "
                f'`/ops rollback {service} {environment} --reason "…"`.'
            )
        reason = f"health alert: {alert['summary']}"
        return self.request(actor, service, environment, None, reason[:500])
