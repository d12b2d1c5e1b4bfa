"""Slack mrkdwn as a reader sees it: mentions resolved, links shown, entities decoded."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

LINK = re.compile(r"<(https?://[^|>]+)\|([^>]*)>")
BARE_LINK = re.compile(r"<(https?://[^>]+)>")
USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
CHANNEL = re.compile(r"<#([CGD][A-Z0-9]+)(?:\|[^>]*)?>")
GROUP = re.compile(r"<!subteam\^(S[A-Z0-9]+)(?:\|[^>]*)?>")
SPECIAL = re.compile(r"<!(channel|here|everyone)>")


def plain(text: str, names: Callable[[str], str] = lambda x: x) -> str:
    """``<@U1>`` → ``@U1`` (or its name), ``<url|label>`` → ``label (url)``, ``&lt;`` → ``<``."""
    text = LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})", text)
    text = BARE_LINK.sub(lambda m: m.group(1), text)
    text = USER.sub(lambda m: "@" + names(m.group(1)), text)
    text = CHANNEL.sub(lambda m: "#" + names(m.group(1)), text)
    text = GROUP.sub(lambda m: "@" + names(m.group(1)), text)
    text = SPECIAL.sub(lambda m: "@" + m.group(1), text)
    return html.unescape(text)
