"""How Slack rejects Block Kit it will not take: the emulator's side of the limits, error strings as Slack words them.

The numbers come from bot/slack_limits.py, where each cites Slack's reference; only the checking is here.
"""

from __future__ import annotations

from typing import Any

from bot.slack_limits import (
    ACTION_ID_MAX,
    ACTIONS_BLOCK_ELEMENTS_MAX,
    BLOCK_ID_MAX,
    BUTTON_TEXT_MAX,
    BUTTON_VALUE_MAX,
    CHECKBOXES_OPTIONS_MAX,
    CONTEXT_BLOCK_ELEMENTS_MAX,
    CONTEXT_TEXT_MAX,
    HEADER_TEXT_MAX,
    INPUT_LABEL_MAX,
    MARKDOWN_BLOCK_TEXT_MAX,
    OPTION_TEXT_MAX,
    OPTION_VALUE_MAX,
    SECTION_FIELD_TEXT_MAX,
    SECTION_FIELDS_MAX_ITEMS,
    SECTION_TEXT_MAX,
)

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
    _text(element.get("text"), BUTTON_TEXT_MAX, f"{pointer}/text", errors)
    if len(str(element.get("value", ""))) > BUTTON_VALUE_MAX:
        errors.append(_too_long(BUTTON_VALUE_MAX, f"{pointer}/value"))
    if len(str(element.get("action_id", ""))) > ACTION_ID_MAX:
        errors.append(_too_long(ACTION_ID_MAX, f"{pointer}/action_id"))


def _checkboxes(element: dict[str, Any], pointer: str, errors: list[str]) -> None:
    options = element.get("options")
    if not isinstance(options, list) or not options or len(options) > CHECKBOXES_OPTIONS_MAX:
        errors.append(f"must have between 1 and {CHECKBOXES_OPTIONS_MAX} items [json-pointer:{pointer}/options]")
        return
    for k, option in enumerate(options):
        _text(option.get("text") if isinstance(option, dict) else None, OPTION_TEXT_MAX, f"{pointer}/options/{k}/text", errors)
        if isinstance(option, dict) and len(str(option.get("value", ""))) > OPTION_VALUE_MAX:
            errors.append(_too_long(OPTION_VALUE_MAX, f"{pointer}/options/{k}/value"))
    if len(str(element.get("action_id", ""))) > ACTION_ID_MAX:
        errors.append(_too_long(ACTION_ID_MAX, f"{pointer}/action_id"))


def block_errors(blocks: Any, max_blocks: int) -> list[str]:
    """Slack's complaints about ``blocks`` (at most ``max_blocks`` of them), or [] when Slack would accept them.

    Each complaint is worded as Slack words it, ending in ``[json-pointer:/blocks/…]``.
    """
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
        if len(str(block.get("block_id", ""))) > BLOCK_ID_MAX:
            errors.append(_too_long(BLOCK_ID_MAX, f"{pointer}/block_id"))
        if kind == "section":
            if "text" not in block and "fields" not in block:
                errors.append(f"must provide text or fields [json-pointer:{pointer}]")
            if "text" in block:
                _text(block["text"], SECTION_TEXT_MAX, f"{pointer}/text", errors)
            fields = block.get("fields") or []
            if len(fields) > SECTION_FIELDS_MAX_ITEMS:
                errors.append(f"no more than {SECTION_FIELDS_MAX_ITEMS} items allowed [json-pointer:{pointer}/fields]")
            for j, field in enumerate(fields):
                _text(field, SECTION_FIELD_TEXT_MAX, f"{pointer}/fields/{j}", errors)
            accessory = block.get("accessory")
            if isinstance(accessory, dict) and accessory.get("type") == "button":
                _button(accessory, f"{pointer}/accessory", errors)
        elif kind == "header":
            _text(block.get("text"), HEADER_TEXT_MAX, f"{pointer}/text", errors)
            if isinstance(block.get("text"), dict) and block["text"].get("type") != "plain_text":
                errors.append(f"must be plain_text [json-pointer:{pointer}/text/type]")
        elif kind == "context":
            elements = block.get("elements") or []
            if not elements or len(elements) > CONTEXT_BLOCK_ELEMENTS_MAX:
                errors.append(f"must have between 1 and {CONTEXT_BLOCK_ELEMENTS_MAX} items [json-pointer:{pointer}/elements]")
            for j, element in enumerate(elements):
                if isinstance(element, dict) and element.get("type") in {"mrkdwn", "plain_text"}:
                    _text(element, CONTEXT_TEXT_MAX, f"{pointer}/elements/{j}", errors)
        elif kind == "actions":
            elements = block.get("elements") or []
            if not elements or len(elements) > ACTIONS_BLOCK_ELEMENTS_MAX:
                errors.append(f"must have between 1 and {ACTIONS_BLOCK_ELEMENTS_MAX} items [json-pointer:{pointer}/elements]")
            for j, element in enumerate(elements):
                if isinstance(element, dict) and element.get("type") == "button":
                    _button(element, f"{pointer}/elements/{j}", errors)
                elif isinstance(element, dict) and element.get("type") == "checkboxes":
                    _checkboxes(element, f"{pointer}/elements/{j}", errors)
        elif kind == "markdown":
            if len(str(block.get("text", ""))) > MARKDOWN_BLOCK_TEXT_MAX:
                errors.append(_too_long(MARKDOWN_BLOCK_TEXT_MAX, f"{pointer}/text"))
        elif kind == "input":
            _text(block.get("label"), INPUT_LABEL_MAX, f"{pointer}/label", errors)
    return errors
