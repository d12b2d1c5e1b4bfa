"""Incident buttons, modals and the timeline reaction: thin glue into ``bot/domain/incidents``.

Buttons carry only an opaque id (an incident id, or ``id.seq`` for a reminder); every check is redone
in the domain. A modal's fields are checked before the ack, so Slack can show which field is wrong
(``response_action: errors``); the work itself runs after the ack.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

from slack_bolt import Ack, App

from bot.domain.shared.policy import Actor
from bot.domain.shared.ports import Reply
from handlers.common import Operations, ack_now, answer_click, button, operations, source_of

log = logging.getLogger("opsbot.handlers.incidents")


class IncidentAction(StrEnum):
    POST_UPDATE = "incident_post_update"
    SNOOZE = "incident_snooze"
    ACK = "incident_ack"
    DECLARE_FROM_ALERT = "incident_declare_from_alert"  # the health alert's button (contract with health)
    DECLARE_ANOTHER = "incident_declare_another"  # under "you declared INC-1 moments ago"


class IncidentView(StrEnum):
    DECLARE = "incident_declare"
    UPDATE = "incident_update"


def form_values(view: dict[str, Any]) -> dict[str, str]:
    """A submitted modal's inputs by block id: text inputs' values, selects' chosen values."""
    values: dict[str, str] = {}
    for block_id, actions in ((view.get("state") or {}).get("values") or {}).items():
        element: dict[str, Any] = actions.get("value") or next(iter(actions.values()), {})
        if element.get("type") == "static_select":
            values[block_id] = str((element.get("selected_option") or {}).get("value") or "")
        else:
            values[block_id] = str(element.get("value") or "")
    return values


def _submitter(body: dict[str, Any], channel: str | None, context: Any) -> Actor:
    return Actor(
        user_id=body["user"]["id"], channel_id=channel or None, source=source_of(context), request_id=body.get("trigger_id")
    )


def _tell(ops: Operations, actor: Actor, reply: Reply) -> None:
    """A modal has no response URL: answer ephemerally where it was opened from."""
    try:
        ops.tell(actor, reply)
    except Exception:  # the work is done and audited; a lost answer is logged
        log.exception("could not answer a modal submission")


def post_update(body: dict[str, Any], respond: Any, context: Any) -> None:
    answer_click(
        body,
        respond,
        context,
        f"click.{IncidentAction.POST_UPDATE}",
        operations(context).incidents.updates.open_form_for,
        "value",
    )


def snooze(body: dict[str, Any], respond: Any, context: Any) -> None:
    answer_click(
        body, respond, context, f"click.{IncidentAction.SNOOZE}", operations(context).incidents.reminders.snooze, "value"
    )


def acknowledge(body: dict[str, Any], respond: Any, context: Any) -> None:
    answer_click(
        body, respond, context, f"click.{IncidentAction.ACK}", operations(context).incidents.management.ack_click, "value"
    )


def declare_from_alert(body: dict[str, Any], respond: Any, context: Any) -> None:
    answer_click(
        body,
        respond,
        context,
        f"click.{IncidentAction.DECLARE_FROM_ALERT}",
        operations(context).incidents.declarations.open_form_from_alert,
        "value",
    )


def declare_another(body: dict[str, Any], respond: Any, context: Any) -> None:
    answer_click(
        body,
        respond,
        context,
        f"click.{IncidentAction.DECLARE_ANOTHER}",
        operations(context).incidents.declarations.declare_again,
        "value",
    )


def ack_declare_form(ack: Ack, view: dict[str, Any], context: Any) -> None:
    """Check the form on the request thread, so Slack can show which field is wrong."""
    errors = operations(context).incidents.declarations.form_errors(form_values(view))
    ack(response_action="errors", errors=errors) if errors else ack()


def handle_declare_submission(body: dict[str, Any], view: dict[str, Any], context: Any) -> None:
    ops = operations(context)
    declarations = ops.incidents.declarations
    values = form_values(view)
    if declarations.form_errors(values):
        return  # refused in the ack; Slack kept the form open
    actor = _submitter(body, view.get("private_metadata"), context)
    reply = ops.dispatcher.perform(
        actor,
        "modal.incident_declare",
        declarations.submit_form,
        values,
        params={"severity": values.get("severity"), "service": values.get("service") or None},
    )
    _tell(ops, actor, reply)


def ack_update_form(ack: Ack, view: dict[str, Any], context: Any) -> None:
    """Check the form on the request thread, so Slack can show which field is missing."""
    errors = operations(context).incidents.updates.form_errors(form_values(view))
    ack(response_action="errors", errors=errors) if errors else ack()


def handle_update_submission(body: dict[str, Any], view: dict[str, Any], context: Any) -> None:
    ops = operations(context)
    updates = ops.incidents.updates
    values = form_values(view)
    if updates.form_errors(values):
        return  # refused in the ack; Slack kept the form open
    incident_id = str(view.get("private_metadata") or "")
    actor = _submitter(body, updates.channel_of(incident_id), context)
    reply = ops.dispatcher.perform(
        actor,
        "modal.incident_update",
        updates.submit_form,
        int(incident_id or 0),
        values,
        params={"incident": incident_id, "status": values.get("status")},
    )
    _tell(ops, actor, reply)


def handle_reaction(event: dict[str, Any], body: dict[str, Any], context: Any) -> None:
    """``reaction_added``: the configured reaction on a message in an incident channel puts it on the timeline."""
    ops = operations(context)
    item = event.get("item") or {}
    reaction = str(event.get("reaction") or "").split("::")[0]  # skin tones arrive as "thumbsup::skin-tone-2"
    if not ops.incidents.timelines.is_timeline_reaction(reaction) or item.get("type") != "message":
        return
    channel, ts = str(item.get("channel") or ""), str(item.get("ts") or "")
    actor = Actor(
        user_id=str(event.get("user") or ""), channel_id=channel, source=source_of(context), request_id=body.get("event_id")
    )
    ops.dispatcher.perform(
        actor,
        "event.reaction_added",
        ops.incidents.timelines.add_marked_message,
        channel,
        ts,
        params={"channel": channel, "ts": ts, "event_id": body.get("event_id")},
    )


def register(app: App) -> None:
    button(app, IncidentAction.POST_UPDATE, post_update)
    button(app, IncidentAction.SNOOZE, snooze)
    button(app, IncidentAction.ACK, acknowledge)
    button(app, IncidentAction.DECLARE_FROM_ALERT, declare_from_alert)
    button(app, IncidentAction.DECLARE_ANOTHER, declare_another)
    app.view(IncidentView.DECLARE)(ack=ack_declare_form, lazy=[handle_declare_submission])
    app.view(IncidentView.UPDATE)(ack=ack_update_form, lazy=[handle_update_submission])
    app.event("reaction_added")(ack=ack_now, lazy=[handle_reaction])
