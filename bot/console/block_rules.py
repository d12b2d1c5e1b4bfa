"""How Slack rejects Block Kit it will not take: the emulator's side of the limits, error strings as Slack words them."""

from __future__ import annotations

from typing import Any

KNOWN_BLOCKS = {"section", "header", "context", "actions", "divider", "image", "input", "markdown", "rich_text", "file", "video"}


def _too_long(limit: int, pointer: str) -> str:
    return f"must be less than {limit + 1} characters [json-pointer:{pointer}]"


def _text(obj: Any, limit: int, pointer: str, errors: list[str]) -> None:
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        errors.append(f"must provide an object [json-pointer:{pointer}]")
        return
    if obj.get("type") not in {"plain_text", "mrkdwn"}:
        errors.append(f"must be a valid enum value [json-pointer:{pointer}/type]")
    if len(obj["text"]) > limit:
        errors.append(_too_long(limit, f"{pointer}/text"))


def _button(element: dict[str, Any], pointer: str, errors: list[str]) -> None:
    _text(element.get("text"), 75, f"{pointer}/text", errors)
    if len(str(element.get("value", ""))) > 2000:
        errors.append(_too_long(2000, f"{pointer}/value"))
    if len(str(element.get("action_id", ""))) > 255:
        errors.append(_too_long(255, f"{pointer}/action_id"))


def block_errors(blocks: Any, max_blocks: int) -> list[str]:
    """Slack's complaints about ``blocks``, or [] when Slack would accept them."""
    if not isinstance(blocks, list):
        return ["must provide an array [json-pointer:/blocks]"]
    errors: list[str] = []
    if len(blocks) > max_blocks:
        errors.append(f"no more than {max_blocks} items allowed [json-pointer:/blocks]")
    for i, block in enumerate(blocks):
        pointer = f"/blocks/{i}"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in KNOWN_BLOCKS:
            errors.append(f"must be a valid enum value [json-pointer:{pointer}/type]")
            continue
        if len(str(block.get("block_id", ""))) > 255:
            errors.append(_too_long(255, f"{pointer}/block_id"))
        if kind == "section":
            if "text" not in block and "fields" not in block:
                errors.append(f"must provide text or fields [json-pointer:{pointer}]")
            if "text" in block:
                _text(block["text"], 3000, f"{pointer}/text", errors)
            fields = block.get("fields") or []
            if len(fields) > 10:
                errors.append(f"no more than 10 items allowed [json-pointer:{pointer}/fields]")
            for j, field in enumerate(fields):
                _text(field, 2000, f"{pointer}/fields/{j}", errors)
            accessory = block.get("accessory")
            if isinstance(accessory, dict) and accessory.get("type") == "button":
                _button(accessory, f"{pointer}/accessory", errors)
        elif kind == "header":
            _text(block.get("text"), 150, f"{pointer}/text", errors)
            if isinstance(block.get("text"), dict) and block["text"].get("type") != "plain_text":
                errors.append(f"must be plain_text [json-pointer:{pointer}/text/type]")
        elif kind == "context":
            elements = block.get("elements") or []
            if not elements or len(elements) > 10:
                errors.append(f"must have between 1 and 10 items [json-pointer:{pointer}/elements]")
            for j, element in enumerate(elements):
                if isinstance(element, dict) and element.get("type") in {"mrkdwn", "plain_text"}:
                    _text(element, 2000, f"{pointer}/elements/{j}", errors)
        elif kind == "actions":
            elements = block.get("elements") or []
            if not elements or len(elements) > 25:
                errors.append(f"must have between 1 and 25 items [json-pointer:{pointer}/elements]")
            for j, element in enumerate(elements):
                if isinstance(element, dict) and element.get("type") == "button":
                    _button(element, f"{pointer}/elements/{j}", errors)
        elif kind == "markdown":
            if len(str(block.get("text", ""))) > 12000:
                errors.append(_too_long(12000, f"{pointer}/text"))
        elif kind == "input":
            _text(block.get("label"), 2000, f"{pointer}/label", errors)
    return errors
