"""Counted words that read right: "1 check", "2 checks", never "1 checks" or "check(s)"."""

from __future__ import annotations

from collections.abc import Sized

IRREGULAR = {"person": "people", "entry": "entries", "is": "are", "was": "were"}


def plural(count: int | Sized, singular: str, plural_form: str | None = None) -> str:
    """``count`` (a number, or anything with a length) and the word in the form it takes: ``plural(1, "check")`` →
    "1 check", ``plural(2, "check")`` → "2 checks", ``plural(3, "person")`` → "3 people"."""
    n = count if isinstance(count, int) else len(count)
    return f"{n} {word_for(n, singular, plural_form)}"


def word_for(count: int, singular: str, plural_form: str | None = None) -> str:
    """The word alone, in the form ``count`` takes: ``word_for(2, "argument")`` → "arguments"."""
    if count == 1:
        return singular
    return plural_form or IRREGULAR.get(singular) or _regular(singular)


def _regular(word: str) -> str:
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"
