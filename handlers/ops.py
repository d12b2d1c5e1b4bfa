"""`/ops`: ack at once on the request thread, then parse, check and run through the dispatcher, and reply."""

from __future__ import annotations

from typing import Any

from slack_bolt import App, Respond

from handlers.common import ack_now, actor_from_command, deliver, operations, source_of


def handle_ops(command: dict[str, Any], respond: Respond, context: Any) -> None:
    """Every `/ops …` line, from Slack or the console (runs after the ack)."""
    ops = operations(context)
    actor = actor_from_command(command, source_of(context))
    reply = ops.dispatcher.run_text(command.get("text") or "", actor)
    deliver(reply, ops, respond)


def register(app: App) -> None:
    app.command("/ops")(ack=ack_now, lazy=[handle_ops])
