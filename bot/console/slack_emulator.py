"""A local stand-in for Slack: the Web API and response URLs over real HTTP on loopback.

It answers like Slack (``{"ok": false, "error": …}`` with HTTP 200, 429 with Retry-After, block
limits enforced as ``invalid_blocks``), records every call, and keeps the messages it was sent so
the console can show them and tests can assert on them. The console runs the bot against it; the
tests point the Web API client at it.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from bot.console.block_rules import block_errors
from bot.console.mrkdwn import plain

CHANNEL_NAME = re.compile(r"^[a-z0-9_-]+$")
RESPONSE_URL_MAX_USES = 5


@dataclass
class Posted:
    """A message as Slack holds it: where, when, what, for whom."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    ephemeral_to: str | None = None
    via: str = "api"
    thread_ts: str | None = None
    edits: int = 0
    deleted: bool = False
    seq: int = 0
    response_key: str | None = None
    user: str | None = None  # who wrote it, for messages people typed (None: the bot)

    def buttons(self) -> list[dict[str, Any]]:
        """Every button in the message, each with the block it sits in."""
        found = []
        for block in self.blocks:
            elements = block.get("elements", []) if block.get("type") == "actions" else [block.get("accessory") or {}]
            for element in elements:
                if element.get("type") == "button":
                    found.append({**element, "block_id": block.get("block_id", "")})
        return found

    def all_text(self) -> str:
        """The text and every string inside the blocks, for assertions."""
        parts = [self.text]

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                for key, value in node.items():
                    if key == "text" and isinstance(value, str):
                        parts.append(value)
                    else:
                        walk(value)
            elif isinstance(node, list):
                for item in node:
                    walk(item)

        walk(self.blocks)
        return "\n".join(parts)

    def seen(self) -> str:
        """What a person reading the message sees: entities decoded, mentions as @U…."""
        return plain(self.all_text())


@dataclass
class ApiCall:
    method: str
    args: dict[str, Any]
    at: float
    status: int
    response: dict[str, Any]


@dataclass
class Channel:
    id: str
    name: str
    members: set[str] = field(default_factory=set)
    pins: list[str] = field(default_factory=list)
    is_private: bool = False
    archived: bool = False
    topic: str = ""


@dataclass
class ResponseTarget:
    channel: str
    user: str
    message_ts: str | None
    uses: int = 0


@dataclass
class Failure:
    error: str
    status: int = 200
    retry_after: int | None = None


class SlackEmulator:
    """Start with ``start()``; ``api_url`` is the Web API base, ``response_url()`` mints response URLs."""

    def __init__(self, token: str = "xoxb-local-emulator", team_id: str = "T0LOCAL", bot_user: str = "U0OPSBOT") -> None:
        self.token = token
        self.team_id = team_id
        self.bot_user = bot_user
        self.channels: dict[str, Channel] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.messages: list[Posted] = []
        self.views: list[dict[str, Any]] = []
        self.calls: list[ApiCall] = []
        self._responses: dict[str, ResponseTarget] = {}
        self._failures: dict[str, list[Failure]] = {}
        self._counter = itertools.count(1)
        self._lock = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._clock = time.time()

    # ----- lifecycle -----
    def start(self, host: str = "127.0.0.1", port: int = 0) -> "SlackEmulator":
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8") if length else ""
                status, headers, body = emulator.handle(self.path, dict(self.headers.items()), raw)
                data = body.encode("utf-8")
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="slack-emulator", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def base_url(self) -> str:
        assert self._server, "start() the emulator first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return self.base_url + "/api/"

    # ----- workspace set-up -----
    def add_channel(self, channel_id: str, name: str, members: list[str] | None = None) -> Channel:
        with self._lock:
            channel = Channel(channel_id, name, set(members or []) | {self.bot_user})
            self.channels[channel_id] = channel
            return channel

    def add_usergroup(self, group_id: str, users: list[str]) -> None:
        with self._lock:
            self.usergroups[group_id] = list(users)

    def add_user(self, user_id: str, name: str, **extra: Any) -> None:
        with self._lock:
            self.users[user_id] = {"id": user_id, "name": name, "real_name": extra.pop("real_name", name), "tz": "UTC", **extra}

    def response_url(self, channel: str, user: str, message_ts: str | None = None) -> str:
        """A fresh response URL bound to a channel, a user and (for clicks) the clicked message."""
        key = f"R{next(self._counter):06d}"
        with self._lock:
            self._responses[key] = ResponseTarget(channel, user, message_ts)
        return f"{self.base_url}/response/{key}"

    def user_says(self, channel: str, user: str, text: str, thread_ts: str | None = None) -> Posted:
        """A person writes in a channel (or in a thread), as the bot would later read it back from history."""
        with self._lock:
            posted = self._store(Posted(channel, self._ts(), text, [], via="user", thread_ts=thread_ts, user=user))
            self._lock.notify_all()
            return posted

    def trigger_id(self) -> str:
        return f"{next(self._counter)}.{int(time.time())}.local"

    def fail(self, method: str, error: str, *, times: int = 1, status: int = 200, retry_after: int | None = None) -> None:
        """Make the next ``times`` calls of ``method`` fail the way Slack fails them."""
        with self._lock:
            self._failures.setdefault(method, []).extend(Failure(error, status, retry_after) for _ in range(times))

    # ----- reading what happened -----
    def calls_to(self, method: str) -> list[ApiCall]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def visible(self) -> list[Posted]:
        with self._lock:
            return [m for m in self.messages if not m.deleted]

    def in_channel(self, channel: str) -> list[Posted]:
        return [m for m in self.visible() if m.channel == channel and m.ephemeral_to is None]

    def ephemerals(self, user: str | None = None) -> list[Posted]:
        return [m for m in self.visible() if m.ephemeral_to and (user is None or m.ephemeral_to == user)]

    def responses(self, url: str) -> list[ApiCall]:
        """What the app sent to the response URL ``url``, in order."""
        key = url.rsplit("/", 1)[-1]
        with self._lock:
            return [c for c in self.calls if c.method == "response_url" and c.args.get("_key") == key]

    def find(self, ts: str) -> Posted | None:
        with self._lock:
            return next((m for m in self.messages if m.ts == ts), None)

    def wait_for(self, predicate: Any, timeout: float = 5.0) -> Any:
        """Block until ``predicate()`` returns something truthy (messages arrive after the ack)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                result = predicate()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met within {timeout}s; {len(self.messages)} messages, last calls: "
                                       f"{[c.method for c in self.calls[-5:]]}")
                self._lock.wait(min(remaining, 0.05))

    # ----- HTTP -----
    def handle(self, path: str, headers: dict[str, str], raw: str) -> tuple[int, dict[str, str], str]:
        if path.startswith("/response/"):
            return self._handle_response_url(path.rsplit("/", 1)[-1], raw)
        if not path.startswith("/api/"):
            return 404, {"Content-Type": "text/plain"}, "not found"
        method = path[len("/api/"):].split("?")[0]
        args = self._parse_args(headers, raw)
        with self._lock:
            status, extra_headers, response = self._api(method, headers, args)
            self.calls.append(ApiCall(method, args, time.time(), status, response))
            self._lock.notify_all()
        return status, {"Content-Type": "application/json; charset=utf-8", **extra_headers}, json.dumps(response)

    @staticmethod
    def _parse_args(headers: dict[str, str], raw: str) -> dict[str, Any]:
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        args: dict[str, Any] = json.loads(raw) if "json" in content_type and raw else dict(parse_qsl(raw))
        for key in ("blocks", "view", "users"):
            value = args.get(key)
            if isinstance(value, str) and value[:1] in "[{":
                args[key] = json.loads(value)
        return args

    def _api(self, method: str, headers: dict[str, str], args: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        queued = self._failures.get(method)
        if queued:
            failure = queued.pop(0)
            extra = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            return failure.status, extra, {"ok": False, "error": failure.error}
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        if auth != f"Bearer {self.token}":
            return 200, {}, {"ok": False, "error": "not_authed" if not auth else "invalid_auth"}
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return 200, {}, {"ok": False, "error": "unknown_method"}
        return 200, {}, handler(args)

    def _ts(self) -> str:
        self._clock = max(self._clock + 0.000100, time.time())
        return f"{self._clock:.6f}"

    def _channel_for(self, channel: str) -> Channel | None:
        if channel.startswith(("U", "W")) and channel in self.users or channel.startswith(("U", "W")) and not self.users:
            dm_id = "D" + channel[1:]
            return self.channels.get(dm_id) or self.add_channel_unlocked(dm_id, f"dm-{channel.lower()}", [channel])
        return self.channels.get(channel)

    def add_channel_unlocked(self, channel_id: str, name: str, members: list[str]) -> Channel:
        channel = Channel(channel_id, name, set(members) | {self.bot_user})
        self.channels[channel_id] = channel
        return channel

    def _content_errors(self, args: dict[str, Any], max_blocks: int = 50) -> dict[str, Any] | None:
        blocks = args.get("blocks") or []
        if not args.get("text") and not blocks:
            return {"ok": False, "error": "no_text"}
        errors = block_errors(blocks, max_blocks)
        if errors:
            return {"ok": False, "error": "invalid_blocks", "errors": errors}
        return None

    def _store(self, message: Posted) -> Posted:
        message.seq = next(self._counter)
        self.messages.append(message)
        return message

    # ----- Web API methods -----
    def _m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "https://local.slack.invalid/", "team": "local", "user": "opsbot",
                "team_id": self.team_id, "user_id": self.bot_user, "bot_id": "B0OPSBOT", "is_enterprise_install": False}

    def _m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_for(str(args.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if channel.archived:
            return {"ok": False, "error": "is_archived"}
        if (problem := self._content_errors(args)) is not None:
            return problem
        text = str(args.get("text") or "")
        response: dict[str, Any] = {"ok": True}
        if len(text) > 40000:
            text = text[:40000]
            response["warning"] = "message_truncated"
        posted = self._store(Posted(channel.id, self._ts(), text, list(args.get("blocks") or []), thread_ts=args.get("thread_ts")))
        response.update(channel=channel.id, ts=posted.ts, message={"text": text, "ts": posted.ts, "blocks": posted.blocks})
        return response

    def _m_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_for(str(args.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if (problem := self._content_errors(args)) is not None:
            return problem
        user = str(args.get("user", ""))
        if user not in channel.members and channel.members != {self.bot_user}:
            return {"ok": False, "error": "user_not_in_channel"}
        posted = self._store(Posted(channel.id, self._ts(), str(args.get("text") or ""), list(args.get("blocks") or []), ephemeral_to=user))
        return {"ok": True, "message_ts": posted.ts}

    def _m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        message = next((m for m in self.messages if m.ts == args.get("ts") and m.channel == args.get("channel")), None)
        if message is None or message.deleted:
            return {"ok": False, "error": "message_not_found"}
        if (problem := self._content_errors(args)) is not None:
            return problem
        message.text, message.blocks, message.edits = str(args.get("text") or ""), list(args.get("blocks") or []), message.edits + 1
        return {"ok": True, "channel": message.channel, "ts": message.ts, "text": message.text}

    def _m_chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        message = next((m for m in self.messages if m.ts == args.get("ts") and m.channel == args.get("channel")), None)
        if message is None or message.deleted:
            return {"ok": False, "error": "message_not_found"}
        message.deleted = True
        return {"ok": True, "channel": message.channel, "ts": message.ts}

    def _m_chat_getPermalink(self, args: dict[str, Any]) -> dict[str, Any]:
        if str(args.get("channel")) not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "channel": args["channel"], "permalink": f"https://local.slack.invalid/archives/{args['channel']}/p{str(args.get('message_ts', '')).replace('.', '')}"}

    def _m_conversations_create(self, args: dict[str, Any]) -> dict[str, Any]:
        name = str(args.get("name") or "")
        if not name:
            return {"ok": False, "error": "invalid_name_required"}
        if len(name) > 80:
            return {"ok": False, "error": "invalid_name_maxlength"}
        if not CHANNEL_NAME.match(name):
            return {"ok": False, "error": "invalid_name_specials"}
        if any(c.name == name for c in self.channels.values()):
            return {"ok": False, "error": "name_taken"}
        channel_id = f"C{next(self._counter):08d}"
        channel = self.add_channel_unlocked(channel_id, name, [])
        channel.is_private = str(args.get("is_private", "false")).lower() == "true"
        return {"ok": True, "channel": self._channel_json(channel)}

    def _m_conversations_invite(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(str(args.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        users = args.get("users") or ""
        wanted = [u for u in (users if isinstance(users, list) else str(users).split(",")) if u]
        if not wanted:
            return {"ok": False, "error": "no_user"}
        if self.bot_user in wanted:
            return {"ok": False, "error": "cant_invite_self"}
        if all(u in channel.members for u in wanted):
            return {"ok": False, "error": "already_in_channel"}
        channel.members.update(wanted)
        return {"ok": True, "channel": self._channel_json(channel)}

    def _m_conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(str(args.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "channel": self._channel_json(channel)}

    def _m_conversations_members(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(str(args.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "members": sorted(channel.members), "response_metadata": {"next_cursor": ""}}

    def _m_conversations_setTopic(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(str(args.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        channel.topic = str(args.get("topic", ""))[:250]
        return {"ok": True, "channel": self._channel_json(channel)}

    def _m_conversations_archive(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(str(args.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if channel.archived:
            return {"ok": False, "error": "already_archived"}
        channel.archived = True
        return {"ok": True}

    def _m_pins_add(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(str(args.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        ts = str(args.get("timestamp", ""))
        if not any(m.ts == ts and m.channel == channel.id for m in self.messages):
            return {"ok": False, "error": "message_not_found"}
        if ts in channel.pins:
            return {"ok": False, "error": "already_pinned"}
        channel.pins.append(ts)
        return {"ok": True}

    def _m_pins_remove(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(str(args.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        ts = str(args.get("timestamp", ""))
        if ts not in channel.pins:
            return {"ok": False, "error": "no_pin"}
        channel.pins.remove(ts)
        return {"ok": True}

    def _m_usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = self.usergroups.get(str(args.get("usergroup", "")))
        if group is None:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(group)}

    def _m_users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(args.get("user", "")))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": user}

    def _m_views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        if not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        if not args.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        errors = block_errors(view.get("blocks") or [], 100)
        if errors:
            return {"ok": False, "error": "invalid_arguments", "response_metadata": {"messages": errors}}
        stored = {**view, "id": f"V{next(self._counter):08d}", "trigger_id": args["trigger_id"]}
        self.views.append(stored)
        return {"ok": True, "view": stored}

    def _m_views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view = next((v for v in self.views if v["id"] == args.get("view_id")), None)
        if view is None:
            return {"ok": False, "error": "not_found"}
        view.update(args.get("view") or {})
        return {"ok": True, "view": view}

    def _history_json(self, message: Posted) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "message", "ts": message.ts, "text": message.text}
        body.update({"user": message.user} if message.user else {"bot_id": "B0OPSBOT", "user": self.bot_user, "blocks": message.blocks})
        if message.thread_ts:
            body["thread_ts"] = message.thread_ts
        return body

    def _readable(self, channel: str) -> list[Posted]:
        return [m for m in self.messages if m.channel == channel and not m.deleted and m.ephemeral_to is None]

    def _m_conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(str(args.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        latest, oldest = float(args.get("latest") or "inf"), float(args.get("oldest") or 0)
        inclusive = str(args.get("inclusive", "")).lower() in {"1", "true"}
        limit = int(args.get("limit") or 100)

        def within(ts: float) -> bool:
            return (oldest <= ts <= latest) if inclusive else (oldest < ts < latest)

        # History holds top-level messages (thread replies live in conversations.replies), newest first.
        found = [m for m in self._readable(channel.id) if (not m.thread_ts or m.thread_ts == m.ts) and within(float(m.ts))]
        found.sort(key=lambda m: float(m.ts), reverse=True)
        return {"ok": True, "messages": [self._history_json(m) for m in found[:limit]], "has_more": len(found) > limit,
                "response_metadata": {"next_cursor": ""}}

    def _m_conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(str(args.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        readable = self._readable(channel.id)
        message = next((m for m in readable if m.ts == str(args.get("ts", ""))), None)
        if message is None:
            return {"ok": False, "error": "thread_not_found"}
        root = message.thread_ts or message.ts
        thread = sorted((m for m in readable if m.ts == root or m.thread_ts == root), key=lambda m: float(m.ts))
        return {"ok": True, "messages": [self._history_json(m) for m in thread[: int(args.get("limit") or 1000)]], "has_more": False,
                "response_metadata": {"next_cursor": ""}}

    def _m_reactions_add(self, args: dict[str, Any]) -> dict[str, Any]:
        if str(args.get("channel", "")) not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True}

    def _channel_json(self, channel: Channel) -> dict[str, Any]:
        return {"id": channel.id, "name": channel.name, "is_channel": True, "is_private": channel.is_private,
                "is_archived": channel.archived, "topic": {"value": channel.topic}, "num_members": len(channel.members)}

    # ----- response URLs -----
    def _handle_response_url(self, key: str, raw: str) -> tuple[int, dict[str, str], str]:
        with self._lock:
            target = self._responses.get(key)
            if target is None:
                return 404, {"Content-Type": "text/plain"}, "no_such_url"
            if target.uses >= RESPONSE_URL_MAX_USES:
                return 404, {"Content-Type": "text/plain"}, "used_url"
            target.uses += 1
            try:
                payload = json.loads(raw or "{}")
            except json.JSONDecodeError:
                return 400, {"Content-Type": "text/plain"}, "invalid_payload"
            self.calls.append(ApiCall("response_url", {**payload, "_key": key}, time.time(), 200, {"ok": True}))
            problem = self._content_errors(payload)
            if problem and not payload.get("delete_original"):
                self._lock.notify_all()
                return 400, {"Content-Type": "text/plain"}, problem["error"]
            original = self.find(target.message_ts) if target.message_ts else None
            if payload.get("delete_original") and original:
                original.deleted = True
            elif payload.get("replace_original") and original:
                original.text, original.blocks, original.edits = str(payload.get("text") or ""), list(payload.get("blocks") or []), original.edits + 1
            else:
                in_channel = payload.get("response_type") == "in_channel"
                self._store(Posted(target.channel, self._ts(), str(payload.get("text") or ""), list(payload.get("blocks") or []),
                                   ephemeral_to=None if in_channel else target.user, via="response_url", response_key=key))
            self._lock.notify_all()
        return 200, {"Content-Type": "text/plain"}, "ok"
