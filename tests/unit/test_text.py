"""Counted words read right, and no template counts the lazy way ("(s)", "{{ n|length }} things")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.domain.shared.text import plural, word_for

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@pytest.mark.parametrize(
    "count,word,expected",
    [
        (0, "check", "0 checks"),
        (1, "check", "1 check"),
        (2, "check", "2 checks"),
        (1, "approval", "1 approval"),
        (3, "person", "3 people"),
        (2, "entry", "2 entries"),
        (2, "match", "2 matches"),
        (2, "day", "2 days"),
        ([1, 2], "lock", "2 locks"),
        ((), "incident", "0 incidents"),
    ],
)
def test_plural_says_one_thing_or_many_things(count: object, word: str, expected: str) -> None:
    assert plural(count, word) == expected  # type: ignore[arg-type]


def test_word_for_gives_the_word_alone() -> None:
    assert (word_for(1, "argument"), word_for(2, "argument")) == ("argument", "arguments")


def test_no_template_counts_with_a_parenthesised_s_or_a_bare_length() -> None:
    offenders = []
    for path in sorted(TEMPLATES.rglob("*.j2")):
        text = path.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), 1):
            if re.search(r"[a-z]\(s\)", line) or re.search(r"\|length \}\} [a-z]", line):
                offenders.append(f"{path.relative_to(TEMPLATES)}:{number}: {line.strip()[:100]}")
    assert offenders == [], "count with the plural filter: {{ things|plural('thing') }}\n" + "\n".join(offenders)
