"""What the approvals family needs, built once by the wiring."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bot.config import OpsConfig
from bot.domain.approvals.ports import ApprovalOutcome, ApprovalsUnitOfWork
from bot.domain.shared.policy import Policy
from bot.domain.shared.ports import AuditLog, Clock, Jobs, Notifier


@dataclass(frozen=True)
class ApprovalDeps:
    config: OpsConfig
    clock: Clock
    uow: Callable[[], ApprovalsUnitOfWork]
    notifier: Notifier
    jobs: Jobs
    policy: Policy
    audit: AuditLog  # checklist ticks and the gates' ticks (votes are audited by the dispatcher and the families)
    outcomes: Mapping[str, ApprovalOutcome]  # by request kind: "deploy", "rollback", "flag_unkill", "flag_rollout"
