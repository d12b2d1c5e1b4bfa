"""The flags family as the app sees it: its parts, built once from ``FlagDeps``, and its declaration."""

from __future__ import annotations

from bot.domain.approvals.service import ApprovalService
from bot.domain.flags.actions import FlagActions, FlagAnnouncements, FlagOutcomes
from bot.domain.flags.commands import FlagCommands
from bot.domain.flags.deps import FlagDeps
from bot.domain.shared.family import Family


class Flags:
    """Flag commands, changes applied or asked for approval, announcements; and the outcome of approved changes.

    ``outcomes`` is built before the approvals family (which it serves as the ``ApprovalOutcome`` of
    ``flag_unkill`` and ``flag_rollout`` requests) and passed in with it.
    """

    def __init__(self, deps: FlagDeps, approvals: ApprovalService, outcomes: FlagOutcomes) -> None:
        self.deps = deps
        self.announcements = outcomes.announcements
        self.outcomes = outcomes
        self.actions = FlagActions(deps, self.announcements, approvals)
        self.commands = FlagCommands(deps, self.actions)

    @staticmethod
    def outcomes_for(deps: FlagDeps) -> FlagOutcomes:
        """What the approvals family calls once a guarded flag change is decided."""
        return FlagOutcomes(deps, FlagAnnouncements(deps))

    def family(self) -> Family:
        return self.commands.family()
