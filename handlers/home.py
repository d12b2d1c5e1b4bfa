"""The Home tab: ``app_home_opened`` publishes the person's Home; Approve/Reject clicked on Home are votes like in the
channel, answered on Home itself. One call each into ``bot/domain/home/service.py`` (``HomeService``).

Home's buttons reuse the approval buttons' action ids (``handlers.approvals.ApprovalAction``) and carry only the
request id, so a vote from Home runs the same ``ApprovalService.approve``/``reject`` through the dispatcher (role,
state, earlier votes, the two-person rule; audited as ``click.approve``). Their listeners here match only clicks
from a Home view and are registered before the channel's: a click in a view has no response URL, so the answer is
Home published again with a notice (or a DM when Slack takes no view).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol, cast

from slack_bolt import App

from bot.domain.home.service import HomeService
from bot.domain.shared.policy import Actor
from bot.domain.shared.ports import Reply
from handlers.approvals import ApprovalAction
from handlers.common import Operations, ack_now, actor_from_action, button_value, operations, source_of

log = logging.getLogger("opsbot.handlers.home")


class HomeOperations(Operations, Protocol):
    """``Operations`` and the Home family (``bot.wiring.Runtime`` provides both)."""

    @property
    def home(self) -> HomeService: ...


def home_operations(context: Any) -> HomeOperations:
    return cast(HomeOperations, operations(context))


def from_home(body: dict[str, Any]) -> bool:
    """A ``block_actions`` from a Home view: ``container.type`` is ``view`` and the view's type is ``home``."""
    container, view = body.get("container"), body.get("view")
    return (
        isinstance(container, dict) and container.get("type") == "view" and isinstance(view, dict) and view.get("type") == "home"
    )


def home_opened(event: dict[str, Any], context: Any) -> None:
    """``app_home_opened`` (https://docs.slack.dev/reference/events/app_home_opened): sent for the Home and the
    Messages tab; only the Home tab is published."""
    if event.get("tab", "home") != "home":
        return
    user = str(event.get("user") or "")[:40]
    if not user:
        return
    try:
        home_operations(context).home.opened(Actor(user_id=user, source=source_of(context)))
    except Exception:  # Slack would not take the view, or worse: nothing to answer in, the log has it
        log.exception("could not publish the Home of %s", user)


def vote_from_home(action: str, run: Callable[[HomeOperations], Callable[[Actor, str], Reply]]) -> Callable[..., None]:
    """The listener for an approval button on Home: ``run(ops)`` (``approve`` or ``reject``) through the dispatcher
    with the button's opaque request id, audited as ``action``; the answer is the clicker's Home (or a DM)."""

    def vote(body: dict[str, Any], context: Any) -> None:
        ops = home_operations(context)
        actor = actor_from_action(body, source_of(context))
        value = button_value(body)
        reply = ops.dispatcher.perform(actor, action, run(ops), value, params={"request": value, "surface": "home"})
        try:
            ops.home.clicked(actor, reply)
        except Exception:  # the vote is done and audited; a lost answer is logged
            log.exception("could not answer %s's click on Home", actor.user_id)

    return vote


approve = vote_from_home("click.approve", lambda ops: ops.approvals.approve)
reject = vote_from_home("click.reject", lambda ops: ops.approvals.reject)


def register(app: App) -> None:
    """Register before ``handlers.approvals``: the first listener whose matchers match handles a click."""
    app.event("app_home_opened")(ack=ack_now, lazy=[home_opened])
    app.action(ApprovalAction.APPROVE, matchers=[from_home])(ack=ack_now, lazy=[approve])
    app.action(ApprovalAction.REJECT, matchers=[from_home])(ack=ack_now, lazy=[reject])
