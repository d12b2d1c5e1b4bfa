"""`/ops` text → words, options and flags → a typed command, with usage errors that say what is wrong."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from bot.domain.shared.errors import AmbiguousName, UsageError
from bot.domain.shared.policy import Actor, Role
from bot.domain.shared.ports import PeopleDirectory, Reply
from bot.domain.shared.text import word_for

MAX_TEXT_CHARS = 4000
# Quotes that open a group, each with the quotes that may close it: ASCII ones, and the typographic ones that phones
# and macOS substitute for them (“…”, „…“, ‘…’, ‚…‘, ‛…’), or type in other locales (« … »).
QUOTES = {
    '"': '"\u201c\u201d', "\u201c": '"\u201c\u201d', "\u201d": '"\u201d', "\u201e": '"\u201c\u201d', "\u201f": '"\u201d',
    "\u00ab": "\u00bb", "\u00bb": "\u00ab",
    "'": "'\u2019", "\u2018": "'\u2018\u2019", "\u2019": "'\u2019", "\u201a": "\u2018\u2019", "\u201b": "'\u2019",
}  # fmt: skip
DASHES = ("\u2014", "\u2013")  # em and en dash: autocorrect's `--`
MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
BARE_USER = re.compile(r"^@?([UW][A-Z0-9]{2,})$")
NAMED_USER = re.compile(r"^@?([\w.\-']{1,80})$")
KEY_VALUE = re.compile(r"^([a-z][a-z_-]*)=(.*)$", re.S)
SLACK_MARKUP = re.compile(r"^<([^<>|]*)(?:\|([^<>]*))?>$")
# C0 and C1 control characters, DEL; newline and tab are allowed in free text.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
TEXT_OPTIONS = frozenset({"reason", "impact", "what", "eta", "public"})
DRY_RUN = "dry-run"  # the flag a subcommand with a ``preview`` accepts

C = TypeVar("C")


class Word(str):
    """One word of `/ops` text; ``quoted`` when quotes grouped it (an unquoted free-text value runs on, see ``split_args``)."""

    quoted: bool = False


def tokenize(text: str) -> list[str]:
    """Split `/ops` text into words the way a shell groups them, without running one.

    Quotes (ASCII or the typographic ones autocorrect types: “ ” „ ‟ « » ‘ ’ ‚ ‛) group words, but only a quote at
    the start of a word (or right after ``=``) opens a group; a quote inside a word is text, so ``it's`` and
    ``it’s`` are apostrophes. A group closes at the next quote of its kind that ends a word. ``\\"`` is a literal quote.
    Slack's markup (``<https://x.io|a label>``, ``<@U123|bob>``) stays one word, spaces included. Slack sends
    ``&``, ``<`` and ``>`` typed by the user as ``&amp;``, ``&lt;``, ``&gt;`` (the manifest sets
    ``should_escape``; https://api.slack.com/reference/surfaces/formatting#escaping): they are decoded here,
    after splitting, so a typed ``<`` never groups words. (Once decoded, a typed ``<@U123>`` looks like Slack's own
    markup to the renderer; broadcasts never notify either way, see ``bot.render.slack_text``.)

    Raises ``UsageError`` for text over ``MAX_TEXT_CHARS`` or a group with no closing quote.
    """
    if len(text) > MAX_TEXT_CHARS:
        raise UsageError(f"That command is {len(text):,} characters long; the limit is {MAX_TEXT_CHARS:,}.")
    tokens: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        word: list[str] = []
        start, quoted = i, False
        while i < n and not text[i].isspace():
            char = text[i]
            closers = QUOTES.get(char)
            if char == "\\" and i + 1 < n and text[i + 1] in QUOTES:
                word.append(text[i + 1])
                i += 2
            elif closers and (i == start or text[i - 1] == "="):
                end = _closing_quote(text, i + 1, closers)
                if end < 0:
                    raise UsageError(
                        f"Could not read that command: no closing quotation for the {char} before "
                        f"`{CONTROL.sub('�', text[i + 1 : i + 21])}` (quotes must come in pairs)."
                    )
                word.append(text[i + 1 : end].replace("\\" + '"', '"'))
                i, quoted = end + 1, True
            elif char == "<" and (close := text.find(">", i)) > 0 and "<" not in text[i + 1 : close]:
                word.append(text[i : close + 1])
                i = close + 1
            else:
                word.append(char)
                i += 1
        token = Word(_unescape("".join(word)))
        token.quoted = quoted
        tokens.append(token)
    return tokens


def _closing_quote(text: str, at: int, closers: str) -> int:
    """Where a group opened before ``at`` closes: its first quote in ``closers`` that ends a word, else its first one."""
    first = -1
    for i in range(at, len(text)):
        if text[i] in closers and text[i - 1] != "\\":
            if i + 1 == len(text) or text[i + 1].isspace():
                return i
            if first < 0:
                first = i
    return first


def _unescape(token: str) -> str:
    """Undo Slack's three escapes; other ``&…;`` text is what the user typed."""
    if "&" not in token:
        return token
    return token.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def unwrap(token: str) -> str:
    """The identifier inside Slack's markup, or ``token`` itself when it is not markup.

    Slack wraps what it recognises (https://api.slack.com/reference/surfaces/formatting#retrieving-messages):
    ``<http://x.io|x.io>`` → ``x.io`` (a link's label, or its URL without ``mailto:`` when it has none),
    ``<mailto:a@b.c|a@b.c>`` → ``a@b.c``, ``<@U123|bob>`` → ``U123``, ``<#C123|deploys>`` → ``C123``.
    Broadcasts and user groups (``<!here>``, ``<!subteam^S1|@sre>``) are left as they are: they name no identifier.
    """
    match = SLACK_MARKUP.match(token)
    if not match:
        return token
    target, label = match.group(1), match.group(2)
    if target.startswith(("@", "#")):
        return target[1:]
    if target.startswith("!"):
        return token
    return label if label else target.removeprefix("mailto:")


def user_id(token: str) -> str | None:
    """``<@U123|bob>``, ``@U123`` or ``U123`` → ``U123``; anything else → None."""
    match = MENTION.match(token) or BARE_USER.match(token)
    return match.group(1) if match else None


def person(token: str, people: PeopleDirectory, *, argument: str, usage: str | None = None) -> str:
    """The user ID a person argument names: a mention (``<@U123|bob>``), a user ID, or ``@name`` typed by hand.

    A name is looked up in the workspace (``people``: username or display name, case-insensitive).
    Raises ``UsageError`` naming ``argument`` when the token names nobody in the workspace.
    """
    found = user_id(unwrap(token))
    if found:
        return found
    named = NAMED_USER.match(token.strip())
    shown = token if len(token) <= 40 else token[:40] + "…"
    shown = shown if shown.startswith("@") else "@" + shown
    try:
        if named and (found := people.find(named.group(1))):
            return found
    except AmbiguousName as exc:
        raise UsageError(
            f"`{shown}` ({argument}) names {exc.count} people in this workspace; pick the one you mean from the @ list.",
            usage,
        ) from None
    raise UsageError(f"`{shown}` ({argument}) is not a user of this workspace; pick the person from the @ list.", usage)


class NoPeople:
    """A directory that knows nobody: parsing without a workspace (tests of pure parsers)."""

    def find(self, name: str) -> str | None:
        return None


@dataclass(frozen=True)
class Args:
    """A subcommand's arguments after the subcommand words.

    ``positional`` reads each word as an identifier (Slack's markup unwrapped, see ``unwrap``); ``text()`` joins the
    words as typed, markup kept, for free text. Options in ``TEXT_OPTIONS`` (``--reason`` …) keep their markup too.
    """

    positional: tuple[str, ...] = ()
    options: Mapping[str, str] = field(default_factory=dict)
    flags: frozenset[str] = frozenset()
    typed: tuple[str, ...] | None = None
    people: PeopleDirectory = field(default_factory=NoPeople, compare=False, repr=False)

    def text(self, start: int = 0) -> str:
        """Positional words from ``start`` on, as typed (Slack markup kept), joined by spaces."""
        words = self.typed if self.typed is not None else self.positional
        return " ".join(words[start:]).strip()


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
    # What the command would do, changing nothing: run instead of ``run`` when ``--dry-run`` is given (which is then
    # accepted and shown in the usage line). Audited once, as ``dry_run``.
    preview: Callable[[C, Actor], Reply] | None = None

    def __post_init__(self) -> None:
        if self.preview is not None:
            object.__setattr__(self, "flags", self.flags | {DRY_RUN})
            if f"--{DRY_RUN}" not in self.usage:
                object.__setattr__(self, "usage", f"{self.usage} [--{DRY_RUN}]")

    @property
    def name(self) -> str:
        return " ".join(self.words)

    def usage_line(self) -> str:
        return f"/ops {self.usage}"


def split_args(spec: Subcommand[Any], tokens: list[str], people: PeopleDirectory | None = None) -> Args:
    """Sort the tokens after the subcommand words into positional, ``--option value``, ``--flag`` and ``key=value``.

    An em or en dash where an option is expected (``—reason``, autocorrect's ``--reason``) reads as ``--``.
    Identifiers are unwrapped from Slack's markup; free text (``TEXT_OPTIONS``, ``Args.text()``) is kept as typed.
    Raises ``UsageError`` for an unknown option, an option without its value, or a control character
    (newline and tab are allowed in free text), naming the argument.
    """
    positional: list[str] = []
    options: dict[str, str] = {}
    flags: set[str] = set()
    known = spec.flags | spec.options
    i = 0
    while i < len(tokens):
        token = _as_option(tokens[i], known)
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
                if name in TEXT_OPTIONS and not getattr(tokens[i], "quoted", True):
                    while i + 1 < len(tokens) and not _is_option(tokens[i + 1], spec):
                        i += 1
                        value += " " + tokens[i]
                options[name] = _checked(value, f"`--{name}`", spec, text=name in TEXT_OPTIONS)
            else:
                hint = f" Known: {', '.join(sorted(f'--{n}' for n in known))}." if known else ""
                raise UsageError(f"`{spec.name}` has no option `--{name[:40]}`.{hint}", spec.usage_line())
        elif (kv := KEY_VALUE.match(token)) and kv.group(1) in spec.keys:
            options[kv.group(1)] = _checked(kv.group(2), f"`{kv.group(1)}=`", spec, text=False)
        else:
            positional.append(_checked(token, f"argument {len(positional) + 1}", spec, text=True, raw=True))
        i += 1
    words = tuple(positional)
    return Args(tuple(unwrap(word) for word in words), options, frozenset(flags), words, people or NoPeople())


def _is_option(token: str, spec: Subcommand[Any]) -> bool:
    """Whether ``token`` starts an option, a flag or a ``key=value`` of ``spec`` (where unquoted free text stops)."""
    token = _as_option(token, spec.flags | spec.options)
    if token.startswith("--") and token[2:].partition("=")[0].lower() in spec.flags | spec.options:
        return True
    kv = KEY_VALUE.match(token)
    return bool(kv and kv.group(1) in spec.keys)


def _as_option(token: str, known: frozenset[str]) -> str:
    """``—reason`` / ``–reason`` → ``--reason`` when it names a known option or flag."""
    for dash in DASHES:
        if token.startswith(dash) and token[1:].lstrip("-").partition("=")[0].lower() in known:
            return "--" + token[1:].lstrip("-")
    return token


def control_characters(values: Mapping[str, str]) -> dict[str, str]:
    """For each of ``values`` (a submitted form's fields) holding a control character other than newline and tab,
    what to tell the user, by field."""
    found = {name: CONTROL.search(value) for name, value in values.items()}
    return {name: f"Remove the control character (U+{ord(bad.group()):04X})." for name, bad in found.items() if bad}


def _checked(value: str, argument: str, spec: Subcommand[Any], *, text: bool, raw: bool = False) -> str:
    """``value`` (unwrapped unless free text or ``raw``) when it holds no control character; else a usage error.

    Free text may hold newlines and tabs; an identifier may not."""
    bad = CONTROL.search(value) or (None if text else re.search(r"[\n\t]", value))
    if bad:
        raise UsageError(f"{argument} contains a control character (U+{ord(bad.group()):04X}); remove it.", spec.usage_line())
    return value if text or raw else unwrap(value)


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
