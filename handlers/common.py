"""What every handler shares: the narrow view of the app it needs, who is acting, and how a reply reaches Slack."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from typing import Any, Protocol

from slack_bolt import Ack, App

from bot.domain.alerts.service import Alerts
from bot.domain.approvals.service import ApprovalService
from bot.domain.audit.service import AuditCommands
from bot.domain.deploys.service import Deploys
from bot.domain.dispatch import Dispatcher
from bot.domain.flags.service import Flags
from bot.domain.health.service import HealthService
from bot.domain.incidents.service import Incidents
from bot.domain.locks.waiting import DeployLocks
from bot.domain.shared.policy import Actor
from bot.domain.shared.ports import Message, Reply

log = logging.getLogger("opsbot.handlers")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class Operations(Protocol):
    """What handlers may use: run a command or an action (checked, audited), render a reply, answer a modal,
    and the families whose buttons and forms they reach. ``bot.wiring.Runtime`` provides it."""

    @property
    def dispatcher(self) -> Dispatcher: ...

    @property
    def approvals(self) -> ApprovalService: ...

    @property
    def deploys(self) -> Deploys: ...

    @property
    def deploy_locks(self) -> DeployLocks: ...

    @property
    def flags(self) -> Flags: ...

    @property
    def health(self) -> HealthService: ...

    @property
    def incidents(self) -> Incidents: ...

    @property
    def audit_commands(self) -> AuditCommands: ...

    @property
    def alerts(self) -> Alerts: ...

    def render(self, message: Message) -> dict[str, Any]: ...

    def tell(self, actor: Actor, reply: Reply) -> None: ...

    def forget_group(self, group_id: str) -> None: ...


class SharedOperations:
    """The app's operations in a request's context. Bolt deep-copies a request for its lazy listeners
    (``slack_bolt.util.utils.create_copy``); the operations are one per process, so every copy shares them."""

    def __init__(self, ops: Operations) -> None:
        self.ops = ops

    def __deepcopy__(self, memo: dict[int, Any]) -> SharedOperations:
        return self


def operations(context: Any) -> Operations:
    """The app's operations, put in each request's context by ``bot.app.create_app``."""
    shared: SharedOperations = context["ops"]
    return shared.ops


def actor_from_command(command: dict[str, Any], source: str = "slack") -> Actor:
    return Actor(
        user_id=command["user_id"], channel_id=command.get("channel_id"), source=source, request_id=command.get("trigger_id")
    )


def actor_from_action(body: dict[str, Any], source: str = "slack") -> Actor:
    container = body.get("container") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
    message_ts = container.get("message_ts") if container.get("type") == "message" else None
    return Actor(
        user_id=body["user"]["id"],
        channel_id=channel,
        source=source,
        request_id=body.get("trigger_id"),
        message_ts=str(message_ts) if message_ts else None,
    )


def source_of(context: Any) -> str:
    """``console`` when the local console sent the request, else ``slack``."""
    return "console" if context.get("opsbot_console") else "slack"


def deliver(reply: Reply, ops: Operations, respond: Any) -> None:
    """Send ``reply`` through the response URL: ephemeral unless the domain said otherwise."""
    try:
        payload = ops.render(reply.message)
    except Exception:  # a broken template (an override under OPSBOT_TEMPLATES): the user still hears something
        reference = secrets.token_hex(4)
        log.exception("could not render the reply %s (ref %s)", type(reply.message).__name__, reference)
        payload = {"text": f"💥 Something went wrong on our side; it has been logged (ref `{reference}`).", "blocks": []}
    try:
        respond(
            text=payload["text"],
            blocks=payload["blocks"],
            response_type=reply.visibility,
            replace_original=reply.replace_original,
        )
    except Exception:  # the work is done and audited; a lost reply is logged, not retried blindly
        log.exception("could not deliver a reply through the response URL")


def button_value(body: dict[str, Any]) -> str:
    """The opaque id a button carried: nothing else in a payload is trusted. Our ids never hold control characters;
    a forged one that does has them replaced (U+FFFD), so it is "not found" rather than a database error."""
    actions = body.get("actions") or [{}]
    return CONTROL.sub("\ufffd", str(actions[0].get("value") or "")[:200])


def answer_click(
    body: dict[str, Any], respond: Any, context: Any, action: str, run: Callable[[Actor, str], Reply], param: str
) -> None:
    """Run a button's domain call ``run(clicker, value)`` through the dispatcher (checked, audited) and reply to the clicker."""
    ops = operations(context)
    value = button_value(body)
    reply = ops.dispatcher.perform(actor_from_action(body, source_of(context)), action, run, value, params={param: value})
    deliver(reply, ops, respond)


def ack_now(ack: Ack) -> None:
    """Acknowledge on the request thread: Slack's 3-second deadline never waits behind other requests' work."""
    ack()


def button(app: App, action_id: str, work: Callable[[dict[str, Any], Any, Any], None]) -> None:
    """Register a button: ack at once on the request thread, then ``work(body, respond, context)`` on Bolt's pool."""
    app.action(action_id)(ack=ack_now, lazy=[work])
