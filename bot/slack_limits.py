"""Slack's hard limits on messages and views: the one place their numbers live, and the renderer's fitting.

Slack answers ``invalid_blocks`` for a message over a block limit; long content must be cut by us,
visibly, rather than lose the whole message. ``fit_message`` and ``fit_view`` do that for the
renderer; the console's Slack emulator (bot/console/block_rules.py) rejects what Slack would reject
using the same numbers, imported from here. Each number cites the Slack reference page that states
it; tests check them against ../shared/slack/slack_limits.json. Lengths are in characters, counts
in items. Keep this module import-light: the standard library only.
"""

from __future__ import annotations

import copy
import re
from typing import Any

MARKER = "… (truncated)"

BLOCKS_PER_MESSAGE = 50
"""Blocks in one message (https://docs.slack.dev/reference/block-kit/blocks)."""
BLOCKS_PER_MODAL_OR_HOME = 100
"""Blocks in a modal or Home tab view (https://docs.slack.dev/reference/views/modal-views)."""
SECTION_TEXT_MAX = 3000
"""Characters in a section block's ``text`` (https://docs.slack.dev/reference/block-kit/blocks/section-block)."""
SECTION_FIELDS_MAX_ITEMS = 10
"""Items in a section block's ``fields`` (https://docs.slack.dev/reference/block-kit/blocks/section-block)."""
SECTION_FIELD_TEXT_MAX = 2000
"""Characters in one of a section block's ``fields`` (https://docs.slack.dev/reference/block-kit/blocks/section-block)."""
HEADER_TEXT_MAX = 150
"""Characters in a header block's ``text`` (https://docs.slack.dev/reference/block-kit/blocks/header-block)."""
BLOCK_ID_MAX = 255
"""Characters in any block's ``block_id`` (https://docs.slack.dev/reference/block-kit/blocks)."""
BUTTON_TEXT_MAX = 75
"""Characters in a button's ``text`` (https://docs.slack.dev/reference/block-kit/block-elements/button-element)."""
BUTTON_VALUE_MAX = 2000
"""Characters in a button's ``value`` (https://docs.slack.dev/reference/block-kit/block-elements/button-element)."""
BUTTON_URL_MAX = 3000
"""Characters in a button's ``url`` (https://docs.slack.dev/reference/block-kit/block-elements/button-element)."""
ACTION_ID_MAX = 255
"""Characters in an interactive element's ``action_id`` (https://docs.slack.dev/reference/block-kit/block-elements/button-element)."""
ACTIONS_BLOCK_ELEMENTS_MAX = 25
"""Elements in an actions block (https://docs.slack.dev/reference/block-kit/blocks/actions-block)."""
CONTEXT_BLOCK_ELEMENTS_MAX = 10
"""Elements in a context block (https://docs.slack.dev/reference/block-kit/blocks/context-block)."""
MODAL_TITLE_MAX = 24
"""Characters in a modal's ``title`` (https://docs.slack.dev/reference/views/modal-views)."""
MODAL_SUBMIT_CLOSE_MAX = 24
"""Characters in a modal's ``submit`` and ``close`` texts (https://docs.slack.dev/reference/views/modal-views)."""
PRIVATE_METADATA_MAX = 3000
"""Characters in a view's ``private_metadata`` (https://docs.slack.dev/reference/views/modal-views)."""
MARKDOWN_BLOCK_TEXT_MAX = 12000
"""Characters of markdown block ``text``; Slack counts all markdown blocks of a payload together, opsbot applies
it per block (https://docs.slack.dev/reference/block-kit/blocks/markdown-block)."""
MESSAGE_TEXT_MAX = 40000
"""Characters of a message's top-level ``text``; past it Slack truncates and warns ``message_truncated``
(https://docs.slack.dev/reference/methods/chat.postMessage,
https://api.slack.com/changelog/2018-04-truncating-really-long-messages)."""
CONTEXT_TEXT_MAX = 2000
"""Characters in a text element of a context block. Slack's context block page states only the element count, and
its text object page caps text at 3000 (https://docs.slack.dev/reference/block-kit/composition-objects/text-object); opsbot keeps to the stricter 2000
it has always used, and the console's emulator holds messages to the same number."""
CHECKBOXES_OPTIONS_MAX = 10
"""Options in a checkboxes element (https://docs.slack.dev/reference/block-kit/block-elements/checkboxes-element);
``bot.config.common.CHECKLIST_ITEMS_MAX`` holds the config to it."""
OPTION_TEXT_MAX = 75
"""Characters in an option object's ``text`` (https://docs.slack.dev/reference/block-kit/composition-objects/option-object);
``bot.config.common.CHECKLIST_ITEM_TEXT_MAX`` holds the config to it."""
OPTION_VALUE_MAX = 150
"""Characters in an option object's ``value`` (https://docs.slack.dev/reference/block-kit/composition-objects/option-object)."""
INPUT_LABEL_MAX = 2000
"""Characters in an input block's ``label`` (https://docs.slack.dev/reference/block-kit/blocks/input-block)."""

LIMITS = {
    "blocks_per_message": BLOCKS_PER_MESSAGE,
    "blocks_per_modal_or_home": BLOCKS_PER_MODAL_OR_HOME,
    "section_text_max": SECTION_TEXT_MAX,
    "section_fields_max_items": SECTION_FIELDS_MAX_ITEMS,
    "section_field_text_max": SECTION_FIELD_TEXT_MAX,
    "header_text_max": HEADER_TEXT_MAX,
    "block_id_max": BLOCK_ID_MAX,
    "button_text_max": BUTTON_TEXT_MAX,
    "button_value_max": BUTTON_VALUE_MAX,
    "button_url_max": BUTTON_URL_MAX,
    "action_id_max": ACTION_ID_MAX,
    "actions_block_elements_max": ACTIONS_BLOCK_ELEMENTS_MAX,
    "context_block_elements_max": CONTEXT_BLOCK_ELEMENTS_MAX,
    "modal_title_max": MODAL_TITLE_MAX,
    "modal_submit_close_max": MODAL_SUBMIT_CLOSE_MAX,
    "private_metadata_max": PRIVATE_METADATA_MAX,
    "markdown_block_text_max": MARKDOWN_BLOCK_TEXT_MAX,
}
"""The Block Kit numbers above by the names ../shared/slack/slack_limits.json uses (a test compares the two)."""
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
        _fit_text_object(element.get("text"), BUTTON_TEXT_MAX)
        if len(str(element.get("value", ""))) > BUTTON_VALUE_MAX:
            raise ValueError("a button value is over Slack's limit: carry an opaque id instead")
        if "url" in element and len(element["url"]) > BUTTON_URL_MAX:
            del element["url"]
    if element.get("type") == "checkboxes":
        options = element.get("options") or []
        del options[CHECKBOXES_OPTIONS_MAX:]
        for option in options:
            _fit_text_object(option.get("text"), OPTION_TEXT_MAX)
            if len(str(option.get("value", ""))) > OPTION_VALUE_MAX:
                raise ValueError("an option value is over Slack's limit: carry an opaque id instead")
    if len(str(element.get("action_id", ""))) > ACTION_ID_MAX:
        raise ValueError("an action_id is over Slack's limit")


def _fit_block(block: dict[str, Any]) -> None:
    kind = block.get("type")
    if "block_id" in block:
        block["block_id"] = str(block["block_id"])[:BLOCK_ID_MAX]
    if kind == "section":
        _fit_text_object(block.get("text"), SECTION_TEXT_MAX)
        fields = block.get("fields")
        if fields:
            if len(fields) > SECTION_FIELDS_MAX_ITEMS:
                del fields[SECTION_FIELDS_MAX_ITEMS - 1 :]
                fields.append({"type": "mrkdwn", "text": "… more not shown"})
            for field in fields:
                _fit_text_object(field, SECTION_FIELD_TEXT_MAX)
        if isinstance(block.get("accessory"), dict):
            _fit_element(block["accessory"])
    elif kind == "header":
        _fit_text_object(block.get("text"), HEADER_TEXT_MAX)
    elif kind == "context":
        elements = block.get("elements", [])
        del elements[CONTEXT_BLOCK_ELEMENTS_MAX:]
        for element in elements:
            _fit_text_object(element, CONTEXT_TEXT_MAX)
    elif kind == "actions":
        elements = block.get("elements", [])
        del elements[ACTIONS_BLOCK_ELEMENTS_MAX:]
        for element in elements:
            _fit_element(element)
    elif kind == "markdown":
        if isinstance(block.get("text"), str):
            block["text"] = cut(block["text"], MARKDOWN_BLOCK_TEXT_MAX)
    elif kind == "input":
        _fit_text_object(block.get("label"), INPUT_LABEL_MAX)


def _fit_blocks(blocks: list[dict[str, Any]], maximum: int) -> list[dict[str, Any]]:
    blocks = [b for b in blocks if isinstance(b, dict)]
    if len(blocks) > maximum:
        hidden = len(blocks) - (maximum - 1)
        blocks = [
            *blocks[: maximum - 1],
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"… {hidden} more not shown (Slack's limit is {maximum} blocks)"}],
            },
        ]
    for block in blocks:
        _fit_block(block)
    return blocks


def fit_message(message: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``message`` that Slack will accept whole."""
    fitted = copy.deepcopy(message)
    fitted["text"] = cut(str(fitted.get("text", "")), MESSAGE_TEXT_MAX)
    fitted["blocks"] = _fit_blocks(list(fitted.get("blocks") or []), BLOCKS_PER_MESSAGE)
    return fitted


def fit_view(view: dict[str, Any]) -> dict[str, Any]:
    """A copy of the modal ``view`` that Slack will accept whole."""
    fitted = copy.deepcopy(view)
    for key, limit in (("title", MODAL_TITLE_MAX), ("submit", MODAL_SUBMIT_CLOSE_MAX), ("close", MODAL_SUBMIT_CLOSE_MAX)):
        _fit_text_object(fitted.get(key), limit)
    if len(fitted.get("private_metadata", "")) > PRIVATE_METADATA_MAX:
        raise ValueError("private_metadata is over Slack's limit: carry an opaque id instead")
    fitted["blocks"] = _fit_blocks(list(fitted.get("blocks") or []), BLOCKS_PER_MODAL_OR_HOME)
    return fitted
