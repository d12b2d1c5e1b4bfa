"""The deploys family as the app sees it: its parts, built once from ``DeployDeps``, and its declaration."""

from __future__ import annotations

from bot.domain.approvals.service import ApprovalService
from bot.domain.deploys import freezes, history, metrics_view, requests, rollbacks
from bot.domain.deploys.ci_gate import CI_POLL_JOB, CiWaits
from bot.domain.deploys.deps import DeployDeps
from bot.domain.deploys.execution import DeployRuns
from bot.domain.deploys.freeze_takeover import FreezeTakeover
from bot.domain.deploys.freezes import DeployFreezes
from bot.domain.deploys.history import DeployHistory
from bot.domain.deploys.metrics_view import MetricsView
from bot.domain.deploys.outcomes import RUN_JOB, DeployOutcomes
from bot.domain.deploys.reconcile import SETTLE_JOB, DeployReconciler
from bot.domain.deploys.requests import DeployRequests
from bot.domain.deploys.rollbacks import Rollbacks
from bot.domain.shared.commands import Subcommand
from bot.domain.shared.family import Family, JobSpec
from bot.domain.shared.policy import Role


class Deploys:
    """Deploys and rollbacks from request to announced result; ad-hoc freezes; history.

    ``outcomes`` is built before the approvals family (which it serves as the ``ApprovalOutcome`` of
    deploy and rollback requests) and passed in with it.
    """

    def __init__(self, deps: DeployDeps, approvals: ApprovalService, outcomes: DeployOutcomes) -> None:
        self.deps = deps
        self.takeover = outcomes.takeover
        self.outcomes = outcomes
        self.ci_waits = CiWaits(deps, approvals, self.takeover)
        self.requests = DeployRequests(deps, approvals, outcomes, self.takeover, self.ci_waits)
        self.rollbacks = Rollbacks(deps, self.requests)
        self.runs = DeployRuns(deps, self.takeover, self.rollbacks)
        self.reconciler = DeployReconciler(deps, self.takeover)
        self.freezes = DeployFreezes(deps)
        self.history = DeployHistory(deps)
        self.metrics = MetricsView(deps)

    @staticmethod
    def outcomes_for(deps: DeployDeps) -> DeployOutcomes:
        """What the approvals family calls once a deploy or rollback request is decided."""
        return DeployOutcomes(deps, FreezeTakeover(deps))

    def family(self) -> Family:
        return Family(
            "deploys",
            commands=[
                Subcommand(
                    ("deploy",),
                    "Deploy a version: approvals, lock, provider, verification",
                    requests.USAGE,
                    Role.DEPLOYER,
                    requests.parse,
                    self.requests.deploy,
                    options=frozenset({"reason"}),
                    flags=frozenset({"hotfix"}),
                    mutates=True,
                    preview=self.requests.preview,
                ),
                Subcommand(
                    ("cancel",),
                    "Withdraw a deploy or rollback, or stop one that runs",
                    requests.CANCEL_USAGE,
                    Role.DEPLOYER,
                    requests.parse_cancel,
                    self.requests.cancel,
                    mutates=True,
                ),
                Subcommand(
                    ("deploy", "settle"),
                    "Settle a deploy whose outcome is unknown: succeeded or failed",
                    requests.SETTLE_USAGE,
                    Role.ADMIN,
                    requests.parse_settle,
                    self.requests.settle,
                    options=frozenset({"reason"}),
                    mutates=True,
                ),
                Subcommand(
                    ("rollback",),
                    "Roll a service back to its last good version (or a named one)",
                    rollbacks.USAGE,
                    Role.DEPLOYER,
                    rollbacks.parse,
                    self.rollbacks.run,
                    options=frozenset({"reason"}),
                    mutates=True,
                    preview=self.rollbacks.preview,
                ),
                Subcommand(
                    ("freeze",),
                    "Refuse deploys to an environment or service for a while",
                    freezes.FREEZE_USAGE,
                    Role.APPROVER,
                    freezes.parse_freeze,
                    self.freezes.freeze,
                    options=frozenset({"reason"}),
                    mutates=True,
                    preview=self.freezes.preview_freeze,
                ),
                Subcommand(
                    ("unfreeze",),
                    "Lift the freezes set with /ops freeze",
                    freezes.UNFREEZE_USAGE,
                    Role.APPROVER,
                    freezes.parse_unfreeze,
                    self.freezes.unfreeze,
                    mutates=True,
                    preview=self.freezes.preview_unfreeze,
                ),
                Subcommand(
                    ("freezes",),
                    "Freezes in effect now, and the configured windows",
                    "freezes",
                    Role.VIEWER,
                    freezes.parse_list,
                    self.freezes.list,
                ),
                Subcommand(
                    ("history",),
                    "Latest deploys and rollbacks: state, times, requester, approvers",
                    history.USAGE,
                    Role.VIEWER,
                    history.parse,
                    self.history.show,
                ),
                Subcommand(
                    ("metrics",),
                    "Each guardrail's value now against its thresholds, and a chart of the last hour with deploys",
                    metrics_view.USAGE,
                    Role.VIEWER,
                    metrics_view.parse,
                    self.metrics.show,
                ),
            ],
            jobs=[
                JobSpec(RUN_JOB, self.runs.run),
                JobSpec(SETTLE_JOB, self.reconciler.settle),
                JobSpec(CI_POLL_JOB, self.ci_waits.poll),
            ],
            reconcile=[self.reconciler.round, self.ci_waits.quiet_polls],
        )
