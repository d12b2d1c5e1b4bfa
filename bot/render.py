"""Jinja2 templates → Block Kit messages, with every value escaped and every Slack limit respected.

Templates are YAML with ``{{ … }}`` placed inside double-quoted strings. Every value is written as Slack
text (``slack_text``) and escaped for the YAML string it sits in, unless a filter marked it as trusted markup
(``mention``, ``channel``, ``link``, ``code``). In a value, Slack's own markup for a link, a person or a channel
(what Slack put in the user's message) stays markup, so it shows as it did in their message; broadcasts and
user-group mentions become plain ``@here`` / ``@sre`` text, so nobody is notified through text they typed; every
other ``&``, ``<`` and ``>`` is escaped.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined
from jinja2 import TemplateError as JinjaTemplateError

from bot.config.durations import format_duration
from bot.domain.shared.ports import Message
from bot.domain.shared.text import plural
from bot.slack_limits import fit_message, fit_view

USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
CHANNEL = re.compile(r"^[CGD][A-Z0-9]{2,}$")
GROUP = re.compile(r"^S[A-Z0-9]{2,}$")
SAFE_URL = re.compile(r"^https?://[^\s<>|]+$")
MAILTO = re.compile(r"^mailto:[^\s<>|@]+@[^\s<>|]+$")
MARKUP = re.compile(r"<([^<>]*)>")
BROADCAST = re.compile(r"^!(here|channel|everyone)(?:\|.*)?$", re.S)
YAML_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_YAML_SPECIAL = re.compile(r'[\\"\n\r\t\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]')
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Mrkdwn(str):
    """Slack markup built by our own filters: inserted as is (only YAML-escaped)."""


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters Slack treats as control characters in message text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_text(text: str) -> str:
    """``text`` as mrkdwn that shows what Slack showed in the user's message, and notifies nobody.

    Slack's markup for a link (``<https://…|label>``, ``<mailto:…|label>``), a person (``<@U123|bob>``) and a channel
    (``<#C123|deploys>``) is kept (labels escaped); a broadcast (``<!here>``, ``<!channel>``, ``<!everyone>``) becomes
    the plain text ``@here``; a user group (``<!subteam^S123|@sre>``) its plain ``@sre``; any other ``<…>``, and every
    ``&``, ``<``, ``>`` outside markup, is escaped
    (https://api.slack.com/reference/surfaces/formatting#escaping, #mentioning-users, #linking-urls).
    """
    out: list[str] = []
    at = 0
    for found in MARKUP.finditer(text):
        out.append(escape_mrkdwn(text[at : found.start()]))
        out.append(_markup(found.group(1)))
        at = found.end()
    out.append(escape_mrkdwn(text[at:]))
    return "".join(out)


def _markup(inner: str) -> str:
    target, bar, label = inner.partition("|")
    shown = escape_mrkdwn(label).replace("|", "¦")
    if target.startswith("@") and USER.match(target[1:]):
        return f"<{target}>"
    if target.startswith("#") and CHANNEL.match(target[1:]):
        return f"<{target}|{shown}>" if bar and shown else f"<{target}>"
    if SAFE_URL.match(target) or MAILTO.match(target):
        return f"<{target}|{shown}>" if bar and shown else f"<{target}>"
    if broadcast := BROADCAST.match(inner):
        return "@" + broadcast.group(1)
    if target.startswith("!subteam^"):
        name = label or target.removeprefix("!subteam^")
        return escape_mrkdwn("@" + name.lstrip("@"))
    if target.startswith("!") and bar:
        return shown  # a date or other special with its fallback text
    return escape_mrkdwn(f"<{inner}>")


def _yaml_escape(text: str) -> str:
    return _YAML_SPECIAL.sub(lambda m: YAML_ESCAPES.get(m.group(), f"\\u{ord(m.group()):04x}"), text)


def _finalize(value: Any) -> str:
    if value is None:
        return ""
    text = str(value) if isinstance(value, Mrkdwn) else slack_text(str(value))
    return _yaml_escape(text)


def mention(user: Any) -> str:
    value = str(user or "")
    if USER.match(value):
        return Mrkdwn(f"<@{value}>")
    if GROUP.match(value):
        return Mrkdwn(f"<!subteam^{value}>")
    return value


def channel(channel_id: Any) -> str:
    value = str(channel_id or "")
    return Mrkdwn(f"<#{value}>") if CHANNEL.match(value) else value


def link(url: Any, label: Any = None) -> str:
    target = str(url or "")
    text = escape_mrkdwn(str(label if label is not None else target)).replace("|", "¦")
    if not SAFE_URL.match(target):
        return Mrkdwn(text)
    return Mrkdwn(f"<{target}|{text}>")


def code(value: Any) -> str:
    return Mrkdwn("`" + escape_mrkdwn(str(value)).replace("`", "ˋ") + "`")


def clock(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%H:%M UTC")


def hm(moment: datetime | None) -> str:
    """``14:02`` (UTC), for lines that already say their times are UTC."""
    return "—" if moment is None else moment.astimezone(UTC).strftime("%H:%M")


def stamp(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "—"
    delta = now - moment
    if delta < timedelta(0):
        return "in " + format_duration(-delta)
    return format_duration(delta) + " ago"


def until(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "—"
    return "in " + format_duration(max(moment - now, timedelta(0)))


def seconds(value: float | int | timedelta) -> str:
    total = value.total_seconds() if isinstance(value, timedelta) else float(value)
    return format_duration(timedelta(seconds=total))


def shipped_templates() -> Path:
    """The templates/ folder of the checkout, or the installed copy."""
    checkout = Path(__file__).resolve().parent.parent / "templates"
    if checkout.is_dir():
        return checkout
    return Path(str(resources.files("opsbot_templates")))


class TemplateError(Exception):
    """A template rendered to something that is not a message; names the template."""


class Renderer:
    """Renders domain messages (dataclasses naming a template) to Slack message payloads."""

    def __init__(self, override_dir: Path | None = None) -> None:
        loaders = [FileSystemLoader(str(override_dir))] if override_dir else []
        loaders.append(FileSystemLoader(str(shipped_templates())))
        self.env = Environment(
            loader=ChoiceLoader(loaders),
            undefined=StrictUndefined,
            finalize=_finalize,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            autoescape=False,
        )
        self.env.filters.update(
            mention=mention,
            channel=channel,
            link=link,
            code=code,
            clock=clock,
            hm=hm,
            stamp=stamp,
            ago=ago,
            until=until,
            seconds=seconds,
            plural=plural,
        )

    def compile_all(self) -> dict[str, str]:
        """Compile every template now (about 2 MB and half a second of CPU for the shipped ones), so that no user
        waits for a first use. Jinja keeps up to 400 compiled templates (its cache's default). Returns the templates
        that do not compile (an override's mistake), by name, with the reason; each is reported again when used."""
        broken: dict[str, str] = {}
        for name in self.env.list_templates():
            if name.endswith(".yml.j2"):
                try:
                    self.env.get_template(name)
                except JinjaTemplateError as exc:
                    broken[name] = f"{type(exc).__name__}: {exc}"
        return broken

    def render_template(self, name: str, context: dict[str, Any]) -> dict[str, Any]:
        """Render ``templates/<name>.yml.j2`` with ``context`` into a dict."""
        source = self.env.get_template(f"{name}.yml.j2").render(**context)
        try:
            data = yaml.load(source, Loader=Loader)
        except yaml.YAMLError as exc:
            raise TemplateError(f"{name}: rendered text is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise TemplateError(f"{name}: must render a mapping with text and blocks")
        return data

    def render(self, message: Message) -> dict[str, Any]:
        """``{"text": …, "blocks": […]}`` for a domain message, within Slack's limits."""
        data = self.render_template(message.template, context_of(message))
        if "text" not in data:
            raise TemplateError(f"{message.template}: has no fallback `text`")
        data["text"] = str(data["text"])
        data.setdefault("blocks", [])
        return fit_message(data)

    def render_view(self, message: Message) -> dict[str, Any]:
        """A modal view payload for a domain message, within Slack's limits."""
        return fit_view(self.render_template(message.template, context_of(message)))


def context_of(message: Message) -> dict[str, Any]:
    if dataclasses.is_dataclass(message):
        fields = {f.name: getattr(message, f.name) for f in dataclasses.fields(message)}
    else:
        fields = dict(vars(message))
    return {**fields, "m": message}
