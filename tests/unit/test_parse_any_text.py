"""Any text after any registered `/ops` subcommand parses into its typed command or a usage error that renders."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.shared.commands import Subcommand, match, split_args, tokenize
from bot.domain.shared.errors import UsageError
from bot.domain.shared.messages import ErrorNotice
from bot.render import Renderer
from tests.fakes import FakePeople, fake_world
from tests.hostile_text import TRICKY

SUBCOMMANDS: list[Subcommand[Any]] = list(fake_world().dispatcher.subcommands)
RENDERER = Renderer()
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def test_every_family_declares_subcommands() -> None:
    assert {s.words[0] for s in SUBCOMMANDS} >= {"lock", "deploy", "flag", "incident", "audit", "health", "freeze"}


def arguments(spec: Subcommand[Any]) -> st.SearchStrategy[list[str]]:
    own = [f"--{o}" for o in sorted(spec.options | spec.flags)] + [f"{k}=" for k in sorted(spec.keys)]
    word = st.one_of(st.sampled_from(TRICKY + own), st.text(max_size=12))
    return st.lists(word, max_size=8)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_words_after_any_subcommand_parse_or_give_a_usage_error_that_renders(data: st.DataObject) -> None:
    spec = data.draw(st.sampled_from(SUBCOMMANDS), label="subcommand")
    words = data.draw(arguments(spec), label="words")
    text = " ".join([spec.name, *words])
    try:
        tokens = tokenize(text)
        found, rest = match(SUBCOMMANDS, tokens)
        found.parse(split_args(found, rest, FakePeople()))
    except UsageError as exc:
        assert exc.message
        RENDERER.render(ErrorNotice("usage", exc.message, exc.usage))


@settings(max_examples=100, deadline=None)
@given(
    spec=st.sampled_from([s for s in SUBCOMMANDS if s.options & {"reason", "impact", "what"}]),
    control=st.characters(min_codepoint=0, max_codepoint=0x9F).filter(lambda c: bool(CONTROL.match(c))),
)
def test_a_control_character_in_free_text_is_refused_naming_the_option(spec: Subcommand[Any], control: str) -> None:
    option = sorted(spec.options & {"reason", "impact", "what"})[0]
    with pytest.raises(UsageError) as caught:
        split_args(spec, ["x", f"--{option}", f"a{control}b"])
    assert f"`--{option}` contains a control character (U+{ord(control):04X})" in caught.value.message
