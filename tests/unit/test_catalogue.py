"""The catalogue: every message opsbot can send, rendered with 0, 1 and 2 of each counted thing and with people as
Slack user IDs, reads right — no "(s)", no "1 approvals", no raw `U…` ID outside a mention.

Each message dataclass (found by tests/unit/test_render.py's scan) is built with every number set to the count, every
list holding that many items and every person field (by its name: ``requester``, ``holder``, ``*_by`` …) holding
a user ID; other text is a plain word. What Slack would show — the ``text`` fallback and every mrkdwn and plain-text
field of the blocks — is then checked.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
import types
import typing
from datetime import datetime, timedelta
from typing import Any

import pydantic
import pytest

from tests.unit.test_render import CLASSES, NOW, render, texts

USER = "U0ALICE"
PERSON = re.compile(
    r"(^|_)(user|users|requester|actor|holder|by|commander|comms|scribe|voter|voters|approver|approvers|participants|"
    r"people|responders|owner|declarer|clicker|killer|requesters|holders)$"
)
ONE_OF_MANY = re.compile(r"\b1 (?!is\b|was\b|has\b|does\b|this\b|its\b|us\b|yes\b|always\b|as\b|plus\b)([a-z]{3,}s)\b")
RAW_ID = re.compile(r"(?<![<@/=#\w])U0ALICE\b")


def sample(hint: Any, count: int, person: bool) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return sample(next(a for a in args if a is not type(None)), count, person)
    if origin is typing.Literal:
        return args[0]
    if origin in (list, tuple, set, frozenset) or hint in (list, tuple):
        item = args[0] if args else str
        values = [sample(item, count, person) for _ in range(count)]
        return tuple(values) if origin is tuple or hint is tuple else values
    if origin is dict or hint is dict:
        return {f"k{i}": sample(args[1] if args else str, count, person) for i in range(count)}
    if hint is bool:
        return True
    if hint is int:
        return count
    if hint is float:
        return float(count)
    if hint is datetime:
        return NOW
    if hint is timedelta:
        return timedelta(minutes=12)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return next(iter(hint))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return build(hint, count)
    if isinstance(hint, type) and issubclass(hint, pydantic.BaseModel):  # a config section (e.g. the CI gate)
        required = {n: sample(f.annotation, count, False) for n, f in hint.model_fields.items() if f.is_required()}
        return hint.model_construct(**required)
    if isinstance(hint, type) and issubclass(hint, Exception):  # a typed error kept for the message (its words)
        return hint(*["thing"] * (len(inspect.signature(hint).parameters)))
    return USER if person else "thing"


def build(cls: type, count: int) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.name == "id" or f.name.endswith("_id") or f.name == "rolled_back_by":  # ids (a rollback's deploy id)
            kwargs[f.name] = "a1b2c3d4"
        else:
            kwargs[f.name] = sample(hints[f.name], count, bool(PERSON.search(f.name)))
    return cls(**kwargs)


def shown(message: Any) -> list[str]:
    """What Slack would show of ``message``: its fallback text and every text field of its blocks."""
    rendered, _ = render(message)
    return [rendered.get("text", ""), *texts(rendered.get("blocks", []))]


@pytest.mark.parametrize("count", [0, 1, 2])
@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: f"{c.__module__.rsplit('.', 1)[-1]}.{c.__name__}")
def test_every_message_reads_right_with_0_1_and_2_and_names_people_by_mention(cls: type, count: int) -> None:
    try:
        message = build(cls, count)
    except (ValueError, TypeError) as exc:  # a message that refuses such values in its own constructor
        pytest.fail(f"{cls.__name__} could not be built with {count}: {exc}")
    problems = []
    for text in shown(message):
        if "(s)" in text:
            problems.append(f"'(s)' in {text[:160]!r}")
        if count == 1 and (found := ONE_OF_MANY.search(text)):
            problems.append(f"{found.group(0)!r} in {text[:160]!r}")
        if found := RAW_ID.search(text):
            problems.append(f"raw user ID at {found.start()} in {text[:200]!r}")
    assert problems == []
