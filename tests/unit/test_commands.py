"""The `/ops` tokenizer and argument splitting: what users type, and what they are told when it is wrong."""

from __future__ import annotations

import re

import pytest

from bot.domain.shared.commands import Args, Subcommand, match, split_args, tokenize, user_id
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
