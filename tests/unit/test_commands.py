"""The `/ops` tokenizer and argument splitting: what users type, and what they are told when it is wrong."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from bot.config.durations import parse_duration
from bot.domain.shared.commands import Args, Subcommand, match, person, split_args, tokenize, unwrap, user_id
from bot.domain.shared.errors import UsageError
from bot.domain.shared.policy import Role


def spec(words: tuple[str, ...], **kw: object) -> Subcommand[Args]:
    return Subcommand(words, "summary", " ".join(words), Role.VIEWER, lambda a: a, lambda c, call: c, **kw)  # type: ignore[arg-type]


SPECS = [spec(("locks",)), spec(("lock",)), spec(("flag", "kill")), spec(("flag", "list")), spec(("incident", "declare"))]


def test_quoted_arguments_stay_together() -> None:
    assert tokenize('lock api production --reason "db migration, step 2"') == [
        "lock",
        "api",
        "production",
        "--reason",
        "db migration, step 2",
    ]


def test_smart_quotes_from_slack_clients_work_like_straight_quotes() -> None:
    assert tokenize("lock api prod --reason \u201cfix the thing\u201d") == ["lock", "api", "prod", "--reason", "fix the thing"]


def test_unbalanced_quotes_get_a_usage_error_naming_the_problem() -> None:
    with pytest.raises(UsageError, match="no closing quotation"):
        tokenize('lock api --reason "never closed')


def test_text_over_the_limit_is_refused_before_parsing() -> None:
    with pytest.raises(UsageError, match="40,000 characters long; the limit is 4,000"):
        tokenize("x" * 40_000)


def test_unicode_and_emoji_survive() -> None:
    assert tokenize('incident declare P1 "Paiement échoué 💥"') == ["incident", "declare", "P1", "Paiement échoué 💥"]


def test_slack_html_escapes_are_undone_in_arguments() -> None:
    assert tokenize("lock api prod --reason a&amp;b&lt;c&gt;") == ["lock", "api", "prod", "--reason", "a&b<c>"]


@pytest.mark.parametrize(
    "token,expected",
    [
        ("<@U0ABC|alice>", "U0ABC"),
        ("<@W0ABC>", "W0ABC"),
        ("@U0ABC", "U0ABC"),
        ("U0ABC", "U0ABC"),
        ("alice", None),
        ("<#C0ABC>", None),
    ],
)
def test_user_references_in_every_form_slack_sends(token: str, expected: str | None) -> None:
    assert user_id(token) == expected


def test_longest_subcommand_prefix_wins() -> None:
    found, rest = match(SPECS, ["flag", "kill", "checkout", "--reason", "x"])
    assert found.words == ("flag", "kill") and rest == ["checkout", "--reason", "x"]
    found, rest = match(SPECS, ["LOCKS"])
    assert found.words == ("locks",) and rest == []


def test_unknown_subcommand_suggests_close_names() -> None:
    with pytest.raises(UsageError, match=re.escape("Unknown subcommand `lcoks`. Did you mean `locks`")):
        match(SPECS, ["lcoks"])


def test_family_without_a_known_subcommand_lists_its_subcommands() -> None:
    with pytest.raises(UsageError, match="`flag` needs one of: `kill`, `list`"):
        match(SPECS, ["flag", "explode"])


def test_options_flags_and_keys_are_sorted_out() -> None:
    s = spec(("deploy",), options=frozenset({"reason"}), flags=frozenset({"hotfix"}), keys=frozenset({"since"}))
    args = split_args(s, ["v1.2.3", "--reason=urgent", "--hotfix", "since=2h", "a=b"])
    assert args.positional == ("v1.2.3", "a=b")
    assert args.options == {"reason": "urgent", "since": "2h"}
    assert args.flags == frozenset({"hotfix"})


def test_unknown_option_is_named_with_the_known_ones() -> None:
    s = spec(("deploy",), options=frozenset({"reason"}), flags=frozenset({"hotfix"}))
    with pytest.raises(UsageError, match=re.escape("`deploy` has no option `--force`. Known: --hotfix, --reason")):
        split_args(s, ["--force"])


def test_option_without_value_says_so() -> None:
    s = spec(("deploy",), options=frozenset({"reason"}))
    with pytest.raises(UsageError, match="`--reason` needs a value"):
        split_args(s, ["v1", "--reason"])


# ----- text the way Slack sends it (autocorrected quotes and dashes, markup, control characters) -----


@pytest.mark.parametrize("opening,closing", [("\u2018", "\u2019"), ("\u201a", "\u2018"), ("\u201b", "\u2019"), ("'", "'")])
def test_single_typographic_quotes_group_words_like_straight_ones(opening: str, closing: str) -> None:
    text = f"flag kill checkout.new-flow --reason {opening}500s after deploy{closing}"
    assert tokenize(text)[-2:] == ["--reason", "500s after deploy"]


@pytest.mark.parametrize("apostrophe", ["'", "\u2019"])
def test_an_apostrophe_inside_a_word_is_text_not_a_quote(apostrophe: str) -> None:
    assert tokenize(f"lock api staging --reason it{apostrophe}s the cache")[-4:] == [
        "--reason",
        f"it{apostrophe}s",
        "the",
        "cache",
    ]


def test_a_quoted_group_may_hold_an_apostrophe() -> None:
    assert tokenize("lock api staging --reason \u2018it\u2019s broken\u2019")[-1] == "it\u2019s broken"


def test_a_quote_after_equals_opens_a_group() -> None:
    assert tokenize('audit action="flag kill"') == ["audit", "action=flag kill"]


def test_slack_markup_stays_one_word_and_typed_brackets_are_decoded() -> None:
    assert tokenize("x <https://x.io/a b|the dash board> a &lt;b&gt; &amp;amp;") == [
        "x",
        "<https://x.io/a b|the dash board>",
        "a",
        "<b>",
        "&amp;",
    ]


@pytest.mark.parametrize(
    "markup,identifier",
    [
        ("<http://x.io|x.io>", "x.io"),
        ("<mailto:a@b.c|a@b.c>", "a@b.c"),
        ("<http://x.io>", "http://x.io"),
        ("<@U123|bob>", "U123"),
        ("<@U123>", "U123"),
        ("<#C123|deploys>", "C123"),
        ("<!here>", "<!here>"),
        ("plain", "plain"),
    ],
)
def test_identifiers_are_unwrapped_from_slack_markup(markup: str, identifier: str) -> None:
    assert unwrap(markup) == identifier


def test_positional_words_are_identifiers_and_text_keeps_the_markup() -> None:
    s = spec(("flag", "kill"), options=frozenset({"reason"}))
    args = split_args(s, tokenize("<http://x.io|x.io> see <https://s.io|status> --reason <#C1|ops> is <@U1|bob>'s"))
    assert args.positional == ("x.io", "see", "status")
    assert args.text(1) == "see <https://s.io|status>"
    assert args.options["reason"] == "<#C1|ops> is <@U1|bob>'s"


@pytest.mark.parametrize("dash", ["\u2014", "\u2013"])
def test_an_autocorrected_dash_before_a_known_option_reads_as_two_hyphens(dash: str) -> None:
    s = spec(("lock",), options=frozenset({"reason"}), flags=frozenset({"hotfix"}))
    args = split_args(s, tokenize(f"api {dash}reason late {dash}hotfix"))
    assert args.options == {"reason": "late"} and args.flags == {"hotfix"}
    assert split_args(s, tokenize(f"api {dash} {dash}x")).positional == ("api", dash, f"{dash}x")


def test_an_unquoted_reason_runs_to_the_next_option() -> None:
    s = spec(("lock",), options=frozenset({"reason"}), flags=frozenset({"hotfix"}), keys=frozenset({"for"}))
    args = split_args(s, tokenize("api staging --reason it's the cache for=2h --hotfix"))
    assert args.options == {"reason": "it's the cache", "for": "2h"} and args.flags == {"hotfix"}
    quoted = split_args(s, tokenize("api --reason 'the cache' staging"))
    assert quoted.options["reason"] == "the cache" and quoted.positional == ("api", "staging")


@pytest.mark.parametrize(
    "text,named",
    [
        ("api --reason 'a\x00b'", "`--reason` contains a control character (U+0000)"),
        ("api for='1\x07h'", "`for=` contains a control character (U+0007)"),
        ("api 'st\x1bg'", "argument 2 contains a control character (U+001B)"),
        ("api for='1h\n'", "`for=` contains a control character (U+000A)"),
    ],
)
def test_control_characters_are_refused_naming_the_argument(text: str, named: str) -> None:
    s = spec(("lock",), options=frozenset({"reason"}), keys=frozenset({"for"}))
    with pytest.raises(UsageError) as caught:
        split_args(s, tokenize(text))
    assert named in caught.value.message


def test_newlines_and_tabs_are_kept_in_free_text() -> None:
    s = spec(("lock",), options=frozenset({"reason"}))
    assert split_args(s, tokenize("api --reason 'line one\n\tline two'")).options["reason"] == "line one\n\tline two"


class People:
    def find(self, name: str) -> str | None:
        return {"alice": "U0ADMIN"}.get(name.casefold())


@pytest.mark.parametrize("token", ["<@U0ADMIN|alice>", "<@U0ADMIN>", "@U0ADMIN", "U0ADMIN", "@alice", "@Alice", "alice"])
def test_a_person_is_a_mention_an_id_or_a_name_in_the_workspace(token: str) -> None:
    assert person(token, People(), argument="by=") == "U0ADMIN"


def test_a_name_nobody_has_is_answered_with_the_at_list() -> None:
    with pytest.raises(UsageError) as caught:
        person("@zed", People(), argument="by=")
    assert caught.value.message == "`@zed` (by=) is not a user of this workspace; pick the person from the @ list."


@pytest.mark.parametrize(
    "text,message",
    [
        ("999999999999d", "`for=`: `999999999999d` is longer than the maximum of 7d"),
        ("9" * 4000 + "s", "is longer than the maximum of 7d"),
        ("8d", "`for=`: `8d` is longer than the maximum of 7d"),
        ("0m", "`for=`: `0m` must be longer than zero"),
        ("\u0661\u0662h", "is not a duration"),
    ],
)
def test_absurd_durations_are_refused_naming_the_argument_and_the_limit(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_duration(text, maximum=timedelta(days=7), argument="for=")


def test_a_duration_without_a_maximum_is_bounded_all_the_same() -> None:
    with pytest.raises(ValueError, match="longer than the maximum of 3650d"):
        parse_duration("999999999w")


def test_a_quote_closes_only_with_a_quote_of_its_own_kind() -> None:
    assert tokenize('x "Café «checkout» 500s" „Zitat hier“ «d e»') == ["x", "Café «checkout» 500s", "Zitat hier", "d e"]
