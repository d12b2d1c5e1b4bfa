"""Block Kit as readable terminal text, buttons numbered so they can be pressed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.console.mrkdwn import plain
from bot.console.slack_emulator import Posted


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line for line in text.splitlines() or [""])


def _input(block: dict[str, Any]) -> str:
    """A form field as ``Label: field="current value"``, with its choices when it is a select."""
    element = block.get("element") or {}
    current = element.get("initial_value") or (element.get("initial_option") or {}).get("value") or ""
    choices = [o.get("value", "") for o in element.get("options", [])]
    line = f'│ {block.get("label", {}).get("text", "")}: {block.get("block_id", "")}="{current}"'
    line += " (optional)" if block.get("optional") else ""
    return line + (f"  · one of: {', '.join(choices)}" if choices else "")


def _unticked(message: Posted, element: dict[str, Any]) -> bool:
    return False


def show(
    message: Posted,
    number: Callable[[Posted, dict[str, Any]], int],
    names: Callable[[str], str],
    title: str,
    ticked: Callable[[Posted, dict[str, Any]], bool] = _unticked,
) -> str:
    """A message as a framed block of text; ``number`` assigns each button and checkbox its press number, ``ticked``
    says whether a checkbox shows ticked on this screen (pressing one toggles it, as a click in Slack does)."""
    lines = [f"┌─ {title}"]
    if not message.blocks:
        lines.append(_indent(plain(message.text, names), "│ "))
    for block in message.blocks:
        kind = block.get("type")
        if kind == "header":
            lines.append("│ ▌" + plain(block["text"]["text"], names).upper())
        elif kind == "section":
            if "text" in block:
                lines.append(_indent(plain(block["text"]["text"], names), "│ "))
            for field in block.get("fields", []):
                lines.append(_indent(plain(field["text"], names), "│   "))
            accessory = block.get("accessory") or {}
            if accessory.get("type") == "button":
                lines.append(
                    f"│   [{number(message, {**accessory, 'block_id': block.get('block_id', '')})}] {accessory['text']['text']}"
                )
        elif kind == "context":
            texts = [plain(e.get("text", ""), names) for e in block.get("elements", []) if "text" in e]
            lines.append(_indent(" · ".join(texts), "│   ┆ "))
        elif kind == "actions":
            buttons = [
                f"[{number(message, {**e, 'block_id': block.get('block_id', '')})}] {e['text']['text']}"
                for e in block.get("elements", [])
                if e.get("type") == "button"
            ]
            if buttons:
                lines.append("│ " + "   ".join(buttons))
            for e in block.get("elements", []):
                if e.get("type") == "checkboxes":
                    element = {**e, "block_id": block.get("block_id", "")}
                    box = "☑" if ticked(message, element) or e.get("initial_options") else "☐"
                    options = " / ".join(plain(o["text"]["text"], names) for o in e.get("options", []))
                    lines.append(f"│ [{number(message, element)}] {box} {options}")
        elif kind == "divider":
            lines.append("│ " + "─" * 40)
        elif kind == "markdown":
            lines.append(_indent(plain(block.get("text", ""), names), "│ "))
        elif kind == "input":
            lines.append(_input(block))
    for file in message.files or []:
        lines.append(f"│ 🖼  {file.get('title') or file.get('name')}: {file.get('path')}")
    lines.append("└─")
    return "\n".join(lines)
