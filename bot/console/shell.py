"""`opsbot console`: the bot without Slack. Lines go through the same Bolt app, handlers, domain and storage.

Only Slack is replaced: a local emulator answers the Web API and response URLs, and every line
becomes a signed request in Slack's own shape, dispatched through Bolt like one from Slack.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TextIO

from pydantic import SecretStr
from slack_bolt import App, BoltRequest, BoltResponse

from bot.app import create_app
from bot.console import payloads
from bot.console.show import show
from bot.console.slack_emulator import Posted, SlackEmulator
from bot.domain.shared.commands import tokenize, user_id
from bot.domain.shared.errors import UsageError
from bot.settings import Settings
from bot.wiring import Runtime

CONSOLE_CHANNEL = "C0CONSOLE"
DEMO_USERS = {
    "U0ADMIN": "alice (admin)",
    "U0APPROVER1": "bob (approver)",
    "U0APPROVER2": "carol (approver)",
    "U0DEPLOYER": "dave (deployer)",
    "U0VIEWER": "erin (viewer)",
}
DEMO_GROUPS = {"S0SRE": ["U0APPROVER1", "U0APPROVER2"]}
HELP = """console commands:
  /ops …                 run an opsbot command as the current user
  press N | press Label  press button N (or the newest button with that label); on a checkbox ☐/☑ it ticks or unticks
  as @U0APPROVER1        act as another user (users: {users})
  in #C0DEPLOYS          type in another channel (a name, an ID, or the start of a name: `in inc-`)
  submit field=value …   submit the open form (a modal); fields not given keep their value
  say TEXT               write TEXT in the current channel as the current user
  react [:name:]         react to the last message you said here (default :pushpin:)
  home                   open your App Home tab (Slack's Home tab: incidents, approvals, deploys, locks …)
  show [N]               show the last N messages again (default 5)
  wait SECONDS           let background work run, then show what it posted
  users | whoami         list demo users | who you are
  help | quit"""


class TrackingExecutor(ThreadPoolExecutor):
    """Bolt's listener pool, counting work in flight so the console knows when a line is done."""

    def __init__(self) -> None:
        super().__init__(max_workers=8, thread_name_prefix="console-listener")
        self._pending: set[Future[Any]] = set()
        self._guard = threading.Condition()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = super().submit(fn, *args, **kwargs)
        with self._guard:
            self._pending.add(future)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future[Any]) -> None:
        with self._guard:
            self._pending.discard(future)
            self._guard.notify_all()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Whether the work in flight finished within ``timeout`` seconds; returns as soon as it has."""
        with self._guard:
            return self._guard.wait_for(lambda: not self._pending, timeout)


@dataclass
class Button:
    message: Posted
    element: dict[str, Any]
    view: dict[str, Any] | None = None  # a button on a Home view (no message, no response URL)


class ConsoleSession:
    """One console: an emulated workspace, the real app, a current user and channel."""

    def __init__(self, settings: Settings, services_factory: Callable[[Settings], Runtime], user: str = "U0DEPLOYER") -> None:
        self.emulator = SlackEmulator(token="xoxb-console-" + secrets.token_hex(4)).start()
        self.secret = secrets.token_hex(16)
        self.settings = settings.model_copy(
            update={
                "slack_bot_token": SecretStr(self.emulator.token),
                "slack_signing_secret": SecretStr(self.secret),
                "slack_api_url": self.emulator.api_url,
            }
        )
        self.services = services_factory(self.settings)
        self._seed_workspace()
        self.executor = TrackingExecutor()
        self.app: App = create_app(self.settings, self.services, executor=self.executor)
        self.user = user
        self.channel = CONSOLE_CHANNEL
        self.buttons: dict[int, Button] = {}
        self._shown: dict[str, int] = {}
        self._next_button = 1
        self.form: dict[str, Any] | None = None  # the open modal, if any
        self.form_fields: dict[str, str] = {}
        self._views_shown = 0
        self._homes_shown: dict[str, str] = {}  # user → hash of the Home view last shown
        self.ticked: set[tuple[str, str, str, str]] = set()  # (user, message ts, block id, action id): a box ticked on screen
        self._calls_seen = 0  # Web API calls already looked at for pins and invites
        self.waiters: list[Callable[[float], bool]] = [self.executor.wait_idle]
        if self.services.local_worker is not None:
            self.waiters.append(self.services.local_worker.wait_idle)

    def _seed_workspace(self) -> None:
        for uid, name in DEMO_USERS.items():
            self.emulator.add_user(uid, name.split()[0], real_name=name)
        for gid, members in DEMO_GROUPS.items():
            self.emulator.add_usergroup(gid, members)
        channels = self.services.config.channels
        everyone = list(DEMO_USERS)
        self.emulator.add_channel(CONSOLE_CHANNEL, "ops-console", everyone)
        for name in ("deployments", "incidents", "alerts"):
            self.emulator.add_channel(getattr(channels, name), name, everyone)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.services.close()
        self.emulator.stop()

    # ----- naming -----
    def name(self, some_id: str) -> str:
        if some_id in DEMO_USERS:
            return DEMO_USERS[some_id].split()[0]
        channel = self.emulator.channels.get(some_id)
        if channel:
            return channel.name
        return some_id

    # ----- sending -----
    def dispatch(self, body: str, content_type: str = "application/x-www-form-urlencoded") -> int:
        """Sign ``body`` and dispatch it through Bolt exactly as an HTTP request from Slack would be."""
        return self.dispatch_response(body, content_type).status

    def dispatch_response(self, body: str, content_type: str = "application/x-www-form-urlencoded") -> BoltResponse:
        headers: dict[str, str | Sequence[str]] = dict(payloads.sign(self.secret, body, content_type=content_type))
        request = BoltRequest(body=body, headers=headers, context={"opsbot_console": True})
        return self.app.dispatch(request)

    def submit(self, fields: dict[str, str]) -> list[str]:
        """Submit the open modal with ``fields`` (and what earlier attempts gave); Slack's field errors come back."""
        if self.form is None:
            return ["No form is open."]
        self.form_fields.update(fields)
        body = payloads.view_submission(
            user_id=self.user, view=self.form, values=payloads.view_state(self.form, self.form_fields)
        )
        response = self.dispatch_response(body)
        answer = json.loads(response.body) if response.body else {}
        if answer.get("response_action") == "errors":
            return ["✗ The form says:", *(f"  {field}: {message}" for field, message in answer.get("errors", {}).items())]
        self.form, self.form_fields = None, {}
        self.settle()
        return ["(form submitted)", *self.new_output()]

    def say(self, text: str) -> list[str]:
        posted = self.emulator.user_says(self.channel, self.user, text)
        self._shown[posted.ts] = posted.edits
        return [f"(@{self.name(self.user)} in #{self.name(self.channel)}: {text})"]

    def react(self, reaction: str) -> list[str]:
        mine = [m for m in self.emulator.in_channel(self.channel) if m.user == self.user]
        if not mine:
            return ["Say something here first (`say …`), then react to it."]
        event = {
            "type": "reaction_added",
            "user": self.user,
            "reaction": reaction,
            "item_user": self.user,
            "item": {"type": "message", "channel": self.channel, "ts": mine[-1].ts},
            "event_ts": f"{time.time():.6f}",
        }
        self.dispatch(
            payloads.event_callback(event, event_id="Ev" + secrets.token_hex(5).upper()), content_type="application/json"
        )
        self.settle()
        return [f"(@{self.name(self.user)} reacted :{reaction}: to “{mine[-1].text[:60]}”)", *self.new_output()]

    def command(self, text: str) -> int:
        names = {uid: self.name(uid) for uid in DEMO_USERS}
        body = payloads.slash_command(
            payloads.as_slack_sends(text, names),
            user_id=self.user,
            channel_id=self.channel,
            user_name=self.name(self.user),
            response_url=self.emulator.response_url(self.channel, self.user),
            trigger_id=self.emulator.trigger_id(),
        )
        return self.dispatch(body)

    def open_home(self) -> list[str]:
        """Slack's ``app_home_opened`` for the current user, then their Home as Slack would show it."""
        event = payloads.app_home_opened(user_id=self.user, view=self.emulator.homes.get(self.user))
        self.dispatch(
            payloads.event_callback(event, event_id="Ev" + secrets.token_hex(5).upper()), content_type="application/json"
        )
        self.settle()
        out = self._new_messages() + self._new_pins_and_invites()
        home = self._new_home(always=True)
        return out + (home or ["(no Home published: is `features.app_home` enabled? the log says why)"])

    def _new_home(self, always: bool = False) -> list[str]:
        """The current user's Home when it was published again since last shown (or ``always``)."""
        view = self.emulator.homes.get(self.user)
        if view is None or (not always and self._homes_shown.get(self.user) == view.get("hash")):
            return []
        self._homes_shown[self.user] = str(view.get("hash"))
        page = Posted("", "", "", list(view.get("blocks") or []))

        def number(message: Posted, element: dict[str, Any]) -> int:
            n = self._number(message, element)
            self.buttons[n].view = view
            return n

        return [show(page, number, self.name, f"Home of @{self.name(self.user)} · the app's Home tab")]

    def press(self, button: Button) -> int:
        if button.view is not None:
            body = payloads.home_block_action(
                user_id=self.user, view=button.view, action=button.element, trigger_id=self.emulator.trigger_id()
            )
            return self.dispatch(body)
        message = button.message
        action = button.element
        if action.get("type") == "checkboxes":  # a click toggles the box on this person's screen, as in Slack
            box = (self.user, message.ts, str(action.get("block_id", "")), str(action.get("action_id", "")))
            self.ticked.symmetric_difference_update({box})
            action = {**action, "selected_options": action.get("options", []) if box in self.ticked else []}
        body = payloads.block_action(
            user_id=self.user,
            channel_id=message.channel,
            message_ts=message.ts,
            action=action,
            response_url=self.emulator.response_url(message.channel, self.user, message.ts),
            trigger_id=self.emulator.trigger_id(),
            is_ephemeral=message.ephemeral_to is not None,
            message=None
            if message.ephemeral_to
            else {"type": "message", "ts": message.ts, "text": message.text, "blocks": message.blocks},
        )
        return self.dispatch(body)

    def settle(self, timeout: float = 30.0) -> None:
        """Wait for the work a line started (listeners, background jobs) to finish."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # A finished job can start more work; settle only when a full pass finds nothing.
            if all(wait(max(deadline - time.monotonic(), 0.01)) for wait in self.waiters) and all(
                wait(0.01) for wait in self.waiters
            ):
                return

    # ----- showing -----
    def _number(self, message: Posted, element: dict[str, Any]) -> int:
        n = self._next_button
        self._next_button += 1
        self.buttons[n] = Button(message, element)
        return n

    def _title(self, message: Posted) -> str:
        where = (
            f"#{self.name(message.channel)}"
            if not message.channel.startswith("D")
            else f"DM to @{self.name('U' + message.channel[1:])}"
        )
        if message.ephemeral_to:
            return f"{where} · only visible to @{self.name(message.ephemeral_to)} (ephemeral)"
        return where + (" · updated" if message.edits else "")

    def render(self, message: Posted) -> str:
        return show(message, self._number, self.name, self._title(message), self._ticked)

    def _ticked(self, message: Posted, element: dict[str, Any]) -> bool:
        return (self.user, message.ts, str(element.get("block_id", "")), str(element.get("action_id", ""))) in self.ticked

    def new_output(self) -> list[str]:
        """Messages posted or edited since last shown, oldest first; pins and invites; then a form that just opened."""
        out = self._new_messages() + self._new_pins_and_invites() + self._new_home()
        while self._views_shown < len(self.emulator.views):
            view = self.emulator.views[self._views_shown]
            self._views_shown += 1
            self.form, self.form_fields = view, {}
            title = f"form: {view.get('title', {}).get('text', '')} · fill it in with `submit field=value …`"
            out.append(show(Posted("", "", "", list(view.get("blocks") or [])), self._number, self.name, title))
        return out

    def _new_pins_and_invites(self) -> list[str]:
        """What Slack shows as channel events and the console would otherwise hide: pins and invitations."""
        calls = self.emulator.calls[self._calls_seen :]
        self._calls_seen += len(calls)
        out = []
        for call in calls:
            if not (call.performed and call.response.get("ok")):
                continue
            where = f"#{self.name(str(call.args.get('channel', '')))}"
            if call.method == "pins.add":
                out.append(f"📌 pinned a message in {where}")
            elif call.method == "conversations.invite":
                people = ", ".join(f"@{self.name(u)}" for u in str(call.args.get("users", "")).split(",") if u)
                out.append(f"➕ invited {people} to {where}")
        return out

    def _new_messages(self) -> list[str]:
        out = []
        for message in self.emulator.visible():
            if message.ephemeral_to and message.ephemeral_to != self.user and self._shown.get(message.ts) is None:
                self._shown[message.ts] = message.edits  # someone else's ephemeral: not on this screen
                continue
            if self._shown.get(message.ts) != message.edits:
                self._shown[message.ts] = message.edits
                out.append(self.render(message))
        return out

    # ----- lines -----
    def run_line(self, line: str) -> list[str]:
        """Run one console line; returns what to print."""
        line = line.strip()
        if not line or line.startswith("#"):
            return []
        word, _, rest = line.partition(" ")
        if line.startswith("/ops"):
            status = self.command(line[len("/ops") :].strip())
            self.settle()
            return ([] if status == 200 else [f"(Slack would have shown an error: HTTP {status})"]) + self.new_output()
        if word == "press":
            button = self._find_button(rest.strip())
            if button is None:
                return [f"No button {rest.strip()!r} on screen."]
            self.press(button)
            self.settle()
            return self.new_output()
        if word == "home":
            return self.open_home()
        if word == "as":
            uid = user_id(rest.strip()) or next(
                (u for u, n in DEMO_USERS.items() if n.split()[0] == rest.strip().lstrip("@")), None
            )
            if uid is None:
                return [f"Unknown user {rest.strip()!r}; try `users`."]
            self.user = uid
            return [f"(now acting as @{self.name(uid)} {uid})"]
        if word == "submit":
            try:
                fields = dict(token.split("=", 1) for token in tokenize(rest) if "=" in token)
            except UsageError as exc:
                return [exc.message]
            return self.submit(fields)
        if word == "say":
            return self.say(rest.strip()) if rest.strip() else ["Say what?"]
        if word == "react":
            return self.react(rest.strip().strip(":") or "pushpin")
        if word == "in":
            target = rest.strip().lstrip("#")
            channels = list(self.emulator.channels.values())
            match = next((c for c in channels if target in (c.id, c.name)), None) or next(
                (c for c in reversed(channels) if target and c.name.startswith(target)), None
            )
            if match is None:
                return [f"Unknown channel {target!r}."]
            self.channel = match.id
            return [f"(now typing in #{match.name})"]
        if word == "show":
            count = int(rest) if rest.strip().isdigit() else 5
            visible = [m for m in self.emulator.visible() if not m.ephemeral_to or m.ephemeral_to == self.user]
            return [self.render(m) for m in visible[-count:]]
        if word == "wait":
            seconds = _seconds(rest)
            if seconds is None:
                return [f"`wait {rest.strip()}`: give seconds from 0 to {MAX_WAIT_SECONDS}, like `wait 2` or `wait 0.5`."]
            time.sleep(seconds)
            self.settle()
            return self.new_output()
        if word in {"users", "whoami"}:
            if word == "whoami":
                return [f"@{self.name(self.user)} {self.user} in #{self.name(self.channel)}"]
            return [f"{uid}  {name}" for uid, name in DEMO_USERS.items()]
        if word in {"help", "?"}:
            return [HELP.format(users=", ".join(DEMO_USERS))]
        return [f"Not a console command: {word!r}. Type `/ops help` or `help`."]

    def _find_button(self, ref: str) -> Button | None:
        ref = ref.strip().strip('"')
        if ref.isdigit():
            return self.buttons.get(int(ref))
        for n in sorted(self.buttons, reverse=True):
            element = self.buttons[n].element
            labels = [element.get("text", {}).get("text", "")] + [o["text"]["text"] for o in element.get("options", [])]
            if ref.lower() in (label.lower() for label in labels):
                return self.buttons[n]
        return None


def run(session: ConsoleSession, lines: Iterable[str] | None, out: TextIO = sys.stdout, interactive: bool = False) -> int:
    """Run ``lines`` (or read a prompt) and print every message the bot would post."""
    print(
        f"opsbot console · acting as @{session.name(session.user)} ({session.user}) in #{session.name(session.channel)} · `help` for console commands",
        file=out,
    )
    if lines is not None:
        for line in lines:
            print(f"\n» {line}", file=out)
            for chunk in session.run_line(line):
                print(chunk, file=out)
        return 0
    if interactive:
        with contextlib.suppress(ImportError):  # line editing and history for input() (arrows, Ctrl-R), where Python has it
            import readline  # noqa: F401
    while True:
        try:
            line = input(f"{session.name(session.user)}@#{session.name(session.channel)}> " if interactive else "")
        except EOFError:
            return 0
        except KeyboardInterrupt:  # Ctrl-C drops the line being typed, as a shell does; Ctrl-D or `quit` ends
            if not interactive:
                raise
            print(file=out)
            continue
        if line.strip() in {"quit", "exit"}:
            return 0
        if not interactive:
            print(f"\n» {line}", file=out)
        for chunk in session.run_line(line):
            print(chunk, file=out)


def split_script(commands: list[str]) -> list[str]:
    """``-c`` values may hold several lines separated by newlines."""
    return [line for command in commands for line in command.splitlines() if line.strip()]


MAX_WAIT_SECONDS = 600


def _seconds(text: str) -> float | None:
    """``wait``'s argument: seconds between 0 and MAX_WAIT_SECONDS (1 when empty); None when it is not that."""
    try:
        seconds = float(text.strip() or 1)
    except ValueError:
        return None
    return seconds if 0 <= seconds <= MAX_WAIT_SECONDS else None
