"""Slack's hard limits on messages and views, applied by truncating with a visible marker.

Slack answers ``invalid_blocks`` for a message over a block limit; long content must be cut by us,
visibly, rather than lose the whole message. The numbers are Slack's (docs.slack.dev, Block Kit
reference); tests check them against ../shared/slack/slack_limits.json.
"""

from __future__ import annotations

import copy
import re
from typing import Any

MARKER = "… (truncated)"
LIMITS = {
    "blocks_per_message": 50,
    "blocks_per_modal_or_home": 100,
    "section_text_max": 3000,
    "section_fields_max_items": 10,
    "section_field_text_max": 2000,
    "header_text_max": 150,
    "block_id_max": 255,
    "button_text_max": 75,
    "button_value_max": 2000,
    "button_url_max": 3000,
    "action_id_max": 255,
    "actions_block_elements_max": 25,
    "context_block_elements_max": 10,
    "modal_title_max": 24,
    "modal_submit_close_max": 24,
    "private_metadata_max": 3000,
    "markdown_block_text_max": 12000,
}
MESSAGE_TEXT_MAX = 40000
CONTEXT_TEXT_MAX = 2000
INPUT_LABEL_MAX = 2000
_OPEN_ANGLE = re.compile(r"<[^>]*$")
_OPEN_ENTITY = re.compile(r"&[a-z#0-9]{0,6}$")


def cut(text: str, limit: int, marker: str = MARKER) -> str:
    """``text`` if it fits, else a prefix plus ``marker``, never splitting an entity, link or code block."""
    if len(text) <= limit:
        return text
    if limit < 100:
        marker = "…"
    head = _OPEN_ENTITY.sub("", _OPEN_ANGLE.sub("", text[: max(limit - len(marker), 0)]))
    if head.count("```") % 2:
        head = _OPEN_ENTITY.sub("", _OPEN_ANGLE.sub("", head[: max(limit - len(marker) - 4, 0)])) + "\n```"
    return head + marker


def _fit_text_object(obj: Any, limit: int) -> None:
    if isinstance(obj, dict) and isinstance(obj.get("text"), str):
        obj["text"] = cut(obj["text"], limit)


def _fit_element(element: dict[str, Any]) -> None:
    if element.get("type") == "button":
        _fit_text_object(element.get("text"), LIMITS["button_text_max"])
        if len(str(element.get("value", ""))) > LIMITS["button_value_max"]:
            raise ValueError("a button value is over Slack's limit: carry an opaque id instead")
        if "url" in element and len(element["url"]) > LIMITS["button_url_max"]:
            del element["url"]
    if len(str(element.get("action_id", ""))) > LIMITS["action_id_max"]:
        raise ValueError("an action_id is over Slack's limit")


def _fit_block(block: dict[str, Any]) -> None:
    kind = block.get("type")
    if "block_id" in block:
        block["block_id"] = str(block["block_id"])[: LIMITS["block_id_max"]]
    if kind == "section":
        _fit_text_object(block.get("text"), LIMITS["section_text_max"])
        fields = block.get("fields")
        if fields:
            if len(fields) > LIMITS["section_fields_max_items"]:
                del fields[LIMITS["section_fields_max_items"] - 1:]
                fields.append({"type": "mrkdwn", "text": "… more not shown"})
            for field in fields:
                _fit_text_object(field, LIMITS["section_field_text_max"])
        if isinstance(block.get("accessory"), dict):
            _fit_element(block["accessory"])
    elif kind == "header":
        _fit_text_object(block.get("text"), LIMITS["header_text_max"])
    elif kind == "context":
        elements = block.get("elements", [])
        del elements[LIMITS["context_block_elements_max"]:]
        for element in elements:
            _fit_text_object(element, CONTEXT_TEXT_MAX)
    elif kind == "actions":
        elements = block.get("elements", [])
        del elements[LIMITS["actions_block_elements_max"]:]
        for element in elements:
            _fit_element(element)
    elif kind == "markdown":
        if isinstance(block.get("text"), str):
            block["text"] = cut(block["text"], LIMITS["markdown_block_text_max"])
    elif kind == "input":
        _fit_text_object(block.get("label"), INPUT_LABEL_MAX)


def _fit_blocks(blocks: list[dict[str, Any]], maximum: int) -> list[dict[str, Any]]:
    blocks = [b for b in blocks if isinstance(b, dict)]
    if len(blocks) > maximum:
        hidden = len(blocks) - (maximum - 1)
        blocks = blocks[: maximum - 1] + [
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"… {hidden} more not shown (Slack's limit is {maximum} blocks)"}]}
        ]
    for block in blocks:
        _fit_block(block)
    return blocks


def fit_message(message: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``message`` that Slack will accept whole."""
    fitted = copy.deepcopy(message)
    fitted["text"] = cut(str(fitted.get("text", "")), MESSAGE_TEXT_MAX)
    fitted["blocks"] = _fit_blocks(list(fitted.get("blocks") or []), LIMITS["blocks_per_message"])
    return fitted


def fit_view(view: dict[str, Any]) -> dict[str, Any]:
    """A copy of the modal ``view`` that Slack will accept whole."""
    fitted = copy.deepcopy(view)
    for key, limit in (("title", LIMITS["modal_title_max"]), ("submit", LIMITS["modal_submit_close_max"]), ("close", LIMITS["modal_submit_close_max"])):
        _fit_text_object(fitted.get(key), limit)
    if len(fitted.get("private_metadata", "")) > LIMITS["private_metadata_max"]:
        raise ValueError("private_metadata is over Slack's limit: carry an opaque id instead")
    fitted["blocks"] = _fit_blocks(list(fitted.get("blocks") or []), LIMITS["blocks_per_modal_or_home"])
    return fitted
