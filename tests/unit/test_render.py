"""Rendering: user text cannot inject mentions, links or structure; every message fits Slack's limits."""

from __future__ import annotations

import dataclasses
import enum
import importlib
import inspect
import pkgutil
import types
import typing
from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic
import pytest

import bot.domain
from bot.console.block_rules import block_errors
from bot.domain.shared.messages import ErrorNotice
from bot.render import Renderer, escape_mrkdwn, link, mention, slack_text
from bot.slack_limits import MARKER, cut, fit_message

HOSTILE = '<!channel> <!subteam^S0SRE|@sre> <javascript:x|y> <b> & "quoted" \\ \n- type: injected\n  text: x 💥'
NOW = datetime(2026, 11, 23, 14, 2, tzinfo=UTC)


def message_classes() -> list[type]:
    """Every domain dataclass that names a template: all of them must render safely."""
    found = []
    for info in pkgutil.walk_packages(bot.domain.__path__, "bot.domain."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and dataclasses.is_dataclass(value)
                and isinstance(getattr(value, "template", None), str)
                and value.__module__ == module.__name__
            ):
                found.append(value)
    return found


def sample(hint: Any, text: str, depth: int = 0) -> Any:
    """A value of type ``hint`` in which every string is ``text``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return sample(next(a for a in args if a is not type(None)), text, depth)
    if origin is typing.Literal:
        return args[0]
    if origin in (list, tuple, set, frozenset) or hint in (list, tuple):
        item = args[0] if args else str
        return [sample(item, text, depth + 1) for _ in range(2)]
    if origin is dict or hint is dict:
        return {text[:20] + "k": sample(args[1] if args else str, text, depth + 1)}
    if hint is Any or hint is str:
        return text
    if hint is bool:
        return True
    if hint in (int, float):
        return 3
    if hint is datetime:
        return NOW
    if hint is timedelta:
        return timedelta(minutes=12)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return next(iter(hint))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return build(hint, text, depth + 1)
    if isinstance(hint, type) and issubclass(hint, pydantic.BaseModel):  # a config section (e.g. the CI gate)
        required = {n: sample(f.annotation, text, depth + 1) for n, f in hint.model_fields.items() if f.is_required()}
        return hint.model_construct(**required)
    if isinstance(hint, type) and issubclass(hint, Exception):  # a typed error kept for its words
        return hint(*[text] * len(inspect.signature(hint).parameters))
    return text


def build(cls: type, text: str, depth: int = 0) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {
        # Ids are ours (opaque tokens, never user text): buttons carry them, so they stay short.
        f.name: "a1b2c3d4" if f.name == "id" or f.name.endswith("_id") else sample(hints[f.name], text, depth)
        for f in dataclasses.fields(cls)
        if f.init
    }
    return cls(**kwargs)


def texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "text" and isinstance(v, str)] + [t for v in node.values() for t in texts(v)]
    if isinstance(node, list):
        return [t for item in node for t in texts(item)]
    return []


CLASSES = message_classes()


def render(message: Any) -> tuple[dict[str, Any], int]:
    """A message, or a modal view (``modal = True``), rendered; and how many blocks Slack takes there."""
    if getattr(message, "modal", False):
        return Renderer().render_view(message), 100
    return Renderer().render(message), 50


def test_the_scan_finds_the_messages() -> None:
    names = {c.__name__ for c in CLASSES}
    assert {"HelpMessage", "ErrorNotice", "LockList", "AuditPage", "ApprovalMessage"} <= names


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: f"{c.__module__.rsplit('.', 1)[-1]}.{c.__name__}")
def test_every_message_escapes_hostile_text_and_keeps_its_structure(cls: type) -> None:
    rendered, max_blocks = render(build(cls, HOSTILE))
    assert block_errors(rendered["blocks"], max_blocks) == []
    every = [rendered.get("text", ""), *texts(rendered["blocks"])]
    for text in every:
        assert "<!channel>" not in text and "<!subteam" not in text and "<javascript" not in text and "<b>" not in text
    assert not any(b.get("type") == "injected" for b in rendered["blocks"])
    assert any("@channel @sre &lt;javascript:x|y&gt; &lt;b&gt;" in t for t in every) or cls.__name__ in {"LockList", "AuditPage"}


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: f"{c.__module__.rsplit('.', 1)[-1]}.{c.__name__}")
def test_every_message_fits_slack_limits_with_huge_values(cls: type) -> None:
    rendered, max_blocks = render(build(cls, "x" * 12_000 + " <end>"))
    assert block_errors(rendered["blocks"], max_blocks) == []
    assert len(rendered.get("text", "")) <= 40_000


def test_mrkdwn_escaping_covers_slacks_three_control_characters() -> None:
    assert escape_mrkdwn("a & b < c > d") == "a &amp; b &lt; c &gt; d"


def test_mentions_only_for_real_ids_and_links_only_for_http_urls() -> None:
    assert mention("U0ALICE") == "<@U0ALICE>"
    assert mention("S0SRE") == "<!subteam^S0SRE>"
    assert mention("<!channel>") == "<!channel>"  # not an ID: left as text, escaped later by the template
    assert link("javascript:alert(1)", "x") == "x"
    assert link("https://ok.example/a", "A|B>") == "<https://ok.example/a|A¦B&gt;>"


def test_long_text_is_cut_with_a_visible_marker_and_never_inside_an_entity_or_link() -> None:
    text = "a" * 2990 + "&amp;&lt;<https://example.com|label> tail"
    out = cut(text, 3000)
    assert out.endswith(MARKER) and len(out) <= 3000
    assert "&am" not in out.replace("&amp;", "") and "<https" not in out


def test_over_fifty_blocks_become_forty_nine_and_a_note() -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": f"row {i}"}} for i in range(80)]
    fitted = fit_message({"text": "t", "blocks": blocks})
    assert len(fitted["blocks"]) == 50
    assert "31 more not shown" in fitted["blocks"][-1]["elements"][0]["text"]
    assert block_errors(fitted["blocks"], 50) == []


def test_operators_can_override_a_template(tmp_path: Any) -> None:
    (tmp_path / "locks").mkdir()
    (tmp_path / "locks" / "held.yml.j2").write_text('text: "custom {{ lock.name }}"\nblocks: []\n')
    from bot.domain.locks.messages import LockHeldNotice
    from bot.domain.locks.ports import LockInfo

    lock = LockInfo("deploy/api/production", "U0DEV", "release", NOW, NOW + timedelta(hours=1), 3)
    assert Renderer(tmp_path).render(LockHeldNotice(lock, NOW))["text"] == "custom deploy/api/production"


@pytest.mark.parametrize(
    "typed,posted",
    [
        ("see <https://status.io/a|the status page> now", "see <https://status.io/a|the status page> now"),
        ("<mailto:sre@x.io|sre@x.io>", "<mailto:sre@x.io|sre@x.io>"),
        ("ask <@U0ALICE|alice> in <#C0OPS|ops>", "ask <@U0ALICE> in <#C0OPS|ops>"),
        ("<https://x.io|a & b>", "<https://x.io|a &amp; b>"),
        ("<!channel> <!here> <!everyone> <!here|here>", "@channel @here @everyone @here"),
        ("<!subteam^S0SRE|@sre> <!subteam^S0SRE>", "@sre @S0SRE"),
        ("<javascript:alert(1)|x> a < b & c > d", "&lt;javascript:alert(1)|x&gt; a &lt; b &amp; c &gt; d"),
    ],
)
def test_user_text_keeps_links_people_and_channels_and_notifies_nobody(typed: str, posted: str) -> None:
    assert slack_text(typed) == posted


def test_c1_control_characters_in_a_value_still_render() -> None:
    rendered = Renderer().render(ErrorNotice("usage", "a\x80b\x85c\x9f \ufffe", None))
    assert rendered["text"].endswith("a\x80b\x85c\x9f \ufffe")


def test_every_shipped_template_compiles_and_an_override_that_does_not_is_named(tmp_path: Any) -> None:
    assert Renderer().compile_all() == {}
    (tmp_path / "locks").mkdir()
    (tmp_path / "locks" / "list.yml.j2").write_text("text: {% if %}\n", encoding="utf-8")
    broken = Renderer(tmp_path).compile_all()
    assert list(broken) == ["locks/list.yml.j2"] and broken["locks/list.yml.j2"].startswith("TemplateSyntaxError: ")
