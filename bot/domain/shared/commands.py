"""`/ops` text → words, options and flags → a typed command, with usage errors that say what is wrong."""

from __future__ import annotations

import difflib
import html
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from bot.domain.shared.errors import UsageError
from bot.domain.shared.policy import Actor, Role
from bot.domain.shared.ports import Reply
from bot.domain.shared.text import word_for

MAX_TEXT_CHARS = 4000
DOUBLE_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"'})
MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
BARE_USER = re.compile(r"^@?([UW][A-Z0-9]{2,})$")
KEY_VALUE = re.compile(r"^([a-z][a-z_-]*)=(.*)$", re.S)

C = TypeVar("C")


def tokenize(text: str) -> list[str]:
    """Split command text like a shell would, without running one; Slack's HTML escapes are undone."""
    if len(text) > MAX_TEXT_CHARS:
        raise UsageError(f"That command is {len(text):,} characters long; the limit is {MAX_TEXT_CHARS:,}.")
    text = text.translate(DOUBLE_QUOTES)
    try:
        tokens = shlex.split(text, posix=True)
    except ValueError as exc:
        raise UsageError(f"Could not read that command: {exc.args[0].lower()} (quotes must come in pairs).") from None
    return [html.unescape(token) if "&" in token else token for token in tokens]


def user_id(token: str) -> str | None:
    """``<@U123|bob>``, ``@U123`` or ``U123`` → ``U123``; anything else → None."""
    match = MENTION.match(token) or BARE_USER.match(token)
    return match.group(1) if match else None


@dataclass(frozen=True)
class Args:
    """A subcommand's arguments after the subcommand words."""

    positional: tuple[str, ...] = ()
    options: Mapping[str, str] = field(default_factory=dict)
    flags: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Subcommand(Generic[C]):
    """One `/ops` subcommand: its words, who may run it, how to parse it into a command ``C`` and run it as an actor."""

    words: tuple[str, ...]
    summary: str
    usage: str
    role: Role
    parse: Callable[[Args], C]
    run: Callable[[C, Actor], Reply]
    options: frozenset[str] = frozenset()
    flags: frozenset[str] = frozenset()
    keys: frozenset[str] = frozenset()
    mutates: bool = False

    @property
    def name(self) -> str:
        return " ".join(self.words)

    def usage_line(self) -> str:
        return f"/ops {self.usage}"


def split_args(spec: Subcommand[Any], tokens: list[str]) -> Args:
    """Sort the tokens after the subcommand words into positional, ``--option value``, ``--flag`` and ``key=value``."""
    positional: list[str] = []
    options: dict[str, str] = {}
    flags: set[str] = set()
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("--") and len(token) > 2:
            name, eq, value = token[2:].partition("=")
            name = name.lower()
            if name in spec.flags and not eq:
                flags.add(name)
            elif name in spec.options:
                if not eq:
                    if i + 1 >= len(tokens):
                        raise UsageError(f"`--{name}` needs a value.", spec.usage_line())
                    i += 1
                    value = tokens[i]
                options[name] = value
            else:
                known = sorted({f"--{n}" for n in spec.flags | spec.options})
                hint = f" Known: {', '.join(known)}." if known else ""
                raise UsageError(f"`{spec.name}` has no option `--{name}`.{hint}", spec.usage_line())
        elif (kv := KEY_VALUE.match(token)) and kv.group(1) in spec.keys:
            options[kv.group(1)] = kv.group(2)
        else:
            positional.append(token)
        i += 1
    return Args(tuple(positional), options, frozenset(flags))


def match(subcommands: list[Subcommand[Any]], tokens: list[str]) -> tuple[Subcommand[Any], list[str]]:
    """The subcommand with the longest word prefix of ``tokens``, and the remaining tokens."""
    lowered = [t.lower() for t in tokens]
    best: Subcommand[Any] | None = None
    for spec in subcommands:
        n = len(spec.words)
        if tuple(lowered[:n]) == spec.words and (best is None or n > len(best.words)):
            best = spec
    if best is None:
        raise UsageError(unknown_message(subcommands, lowered))
    return best, tokens[len(best.words) :]


def unknown_message(subcommands: list[Subcommand[Any]], lowered: list[str]) -> str:
    names = sorted({spec.name for spec in subcommands})
    families = sorted({spec.words[0] for spec in subcommands})
    typed = " ".join(lowered[:2])
    close = difflib.get_close_matches(typed, names, n=3, cutoff=0.6) or difflib.get_close_matches(
        lowered[0], families, n=3, cutoff=0.6
    )
    if lowered[0] in families:
        subs = sorted(" ".join(s.words[1:]) for s in subcommands if s.words[0] == lowered[0] and len(s.words) > 1)
        return f"`{lowered[0]}` needs one of: {', '.join(f'`{s}`' for s in subs)}."
    hint = f" Did you mean {', '.join(f'`{c}`' for c in close)}?" if close else ""
    return f"Unknown subcommand `{lowered[0]}`.{hint} Try `/ops help`."


def expect(args: Args, spec_usage: str, *, required: int, optional: int = 0) -> tuple[str, ...]:
    """The positional arguments, checked for count."""
    count = len(args.positional)
    if count < required:
        raise UsageError("Missing arguments.", f"/ops {spec_usage}")
    if count > required + optional:
        extra = " ".join(args.positional[required + optional :])
        raise UsageError(f"Unexpected {word_for(len(extra.split()), 'argument')}: `{extra[:80]}`.", f"/ops {spec_usage}")
    return args.positional


def no_args(args: Args) -> None:
    """A parser for subcommands that take nothing."""
    if args.positional:
        raise UsageError(f"Unexpected {word_for(len(args.positional), 'argument')}: `{' '.join(args.positional)[:80]}`.")
