"""The Slack Web API methods the emulator answers, each the way Slack answers it (errors included)."""

from __future__ import annotations

import base64
import binascii
import itertools
import re
import time
from typing import Any

from bot.console.block_rules import block_errors
from bot.console.slack_model import Channel, Posted
from bot.slack_limits import (
    BLOCKS_PER_MESSAGE,
    BLOCKS_PER_MODAL_OR_HOME,
    MESSAGE_TEXT_MAX,
)

CHANNEL_NAME = re.compile(r"^[a-z0-9_-]+$")


class WebApiMethods:
    """``_m_<method>`` answers ``<method>`` (dots as underscores); the emulator dispatches to them."""

    bot_user: str
    team_id: str
    channels: dict[str, Channel]
    usergroups: dict[str, list[str]]
    users: dict[str, dict[str, Any]]
    messages: list[Posted]
    views: list[dict[str, Any]]
    homes: dict[str, dict[str, Any]]
    home_tab_enabled: bool
    _counter: itertools.count[int]
    _clock: float

    def _ts(self) -> str:
        self._clock = max(self._clock + 0.000100, time.time())
        return f"{self._clock:.6f}"

    def _channel_for(self, channel: str) -> Channel | None:
        if (channel.startswith(("U", "W")) and channel in self.users) or (channel.startswith(("U", "W")) and not self.users):
            dm_id = "D" + channel[1:]
            return self.channels.get(dm_id) or self.add_channel_unlocked(dm_id, f"dm-{channel.lower()}", [channel])
        return self.channels.get(channel)

    def add_channel_unlocked(self, channel_id: str, name: str, members: list[str]) -> Channel:
        channel = Channel(channel_id, name, set(members) | {self.bot_user})
        self.channels[channel_id] = channel
        return channel

    def _content_errors(self, args: dict[str, Any], max_blocks: int = BLOCKS_PER_MESSAGE) -> dict[str, Any] | None:
        blocks = args.get("blocks") or []
        if not args.get("text") and not blocks:
            return {"ok": False, "error": "no_text"}
        errors = block_errors(blocks, max_blocks)
        if errors:
            return {"ok": False, "error": "invalid_blocks", "errors": errors}
        return None

    @staticmethod
    def _metadata(args: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """``(metadata, None)`` from the ``metadata`` argument (None when absent), or ``(None, error response)``.

        Slack takes ``{"event_type": str, "event_payload": {...}}``, as JSON or a form-encoded JSON string
        (decoded by the emulator); anything else is ``invalid_metadata_format`` (not an object) or
        ``invalid_metadata_schema`` (no ``event_type`` string, or an ``event_payload`` that is not an object).
        ``{}`` stands for "no metadata" (chat.update removes the message's metadata with it).
        """
        if "metadata" not in args:
            return None, None
        metadata = args["metadata"]
        if not isinstance(metadata, dict):
            return None, {"ok": False, "error": "invalid_metadata_format"}
        if not metadata:
            return {}, None
        if not isinstance(metadata.get("event_type"), str) or not metadata["event_type"]:
            return None, {"ok": False, "error": "invalid_metadata_schema"}
        if not isinstance(metadata.get("event_payload"), dict):
            return None, {"ok": False, "error": "invalid_metadata_schema"}
        return {"event_type": metadata["event_type"], "event_payload": metadata["event_payload"]}, None

    def _store(self, message: Posted) -> Posted:
        message.seq = next(self._counter)
        self.messages.append(message)
        return message

    # ----- Web API methods -----
    def _m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://local.slack.invalid/",
            "team": "local",
            "user": "opsbot",
            "team_id": self.team_id,
            "user_id": self.bot_user,
            "bot_id": "B0OPSBOT",
            "is_enterprise_install": False,
        }

    def _m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_for(str(args.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if channel.archived:
            return {"ok": False, "error": "is_archived"}
        if (problem := self._content_errors(args)) is not None:
            return problem
        metadata, problem = self._metadata(args)
        if problem is not None:
            return problem
        text = str(args.get("text") or "")
        response: dict[str, Any] = {"ok": True}
        if len(text) > MESSAGE_TEXT_MAX:
            text = text[:MESSAGE_TEXT_MAX]
            response["warning"] = "message_truncated"
        posted = self._store(
            Posted(
                channel.id,
                self._ts(),
                text,
                list(args.get("blocks") or []),
                thread_ts=args.get("thread_ts"),
                metadata=metadata or None,
            )
        )
        message: dict[str, Any] = {"text": text, "ts": posted.ts, "blocks": posted.blocks}
        if posted.metadata:
            message["metadata"] = posted.metadata
        response.update(channel=channel.id, ts=posted.ts, message=message)
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
        posted = self._store(
            Posted(channel.id, self._ts(), str(args.get("text") or ""), list(args.get("blocks") or []), ephemeral_to=user)
        )
        return {"ok": True, "message_ts": posted.ts}

    def _m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        message = next((m for m in self.messages if m.ts == args.get("ts") and m.channel == args.get("channel")), None)
        if message is None or message.deleted:
            return {"ok": False, "error": "message_not_found"}
        if (problem := self._content_errors(args)) is not None:
            return problem
        metadata, problem = self._metadata(args)
        if problem is not None:
            return problem
        message.text, message.blocks, message.edits = (
            str(args.get("text") or ""),
            list(args.get("blocks") or []),
            message.edits + 1,
        )
        if metadata is not None:  # absent: the message keeps its metadata; {}: it loses it
            message.metadata = metadata or None
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
        return {
            "ok": True,
            "channel": args["channel"],
            "permalink": f"https://local.slack.invalid/archives/{args['channel']}/p{str(args.get('message_ts', '')).replace('.', '')}",
        }

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

    def _user_json(self, user: dict[str, Any]) -> dict[str, Any]:
        """A member as Slack describes one (https://api.slack.com/types/user): ``profile`` carries the display name."""
        extra = {k: v for k, v in user.items() if k not in {"id", "name", "real_name", "tz", "display_name"}}
        return {
            "id": user["id"],
            "team_id": self.team_id,
            "name": user["name"],
            "deleted": False,
            "real_name": user["real_name"],
            "tz": user["tz"],
            "is_bot": False,
            "is_app_user": False,
            "profile": {
                "real_name": user["real_name"],
                "display_name": user.get("display_name", user["name"]),
                "team": self.team_id,
            },
            **extra,
        }

    def _m_users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(args.get("user", "")))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": self._user_json(user)}

    def _m_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        """Pages of members, ``limit`` at a time; ``next_cursor`` is Slack's opaque ``dXNlcjpV…`` (base64 of ``user:<id>``)."""
        ids = sorted(self.users)
        start = 0
        if args.get("cursor"):
            try:
                start = ids.index(base64.b64decode(str(args["cursor"])).decode().removeprefix("user:"))
            except (ValueError, UnicodeDecodeError, binascii.Error):
                return {"ok": False, "error": "invalid_cursor"}
        limit = int(args.get("limit") or 0) or len(ids) or 1
        page = ids[start : start + limit]
        after = ids[start + limit] if start + limit < len(ids) else ""
        cursor = base64.b64encode(f"user:{after}".encode()).decode() if after else ""
        return {
            "ok": True,
            "members": [self._user_json(self.users[uid]) for uid in page],
            "cache_ts": int(self._clock),
            "response_metadata": {"next_cursor": cursor},
        }

    def _m_views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        if not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        if not args.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        errors = block_errors(view.get("blocks") or [], BLOCKS_PER_MODAL_OR_HOME)
        if errors:
            return {"ok": False, "error": "invalid_arguments", "response_metadata": {"messages": errors}}
        stored = {**view, "id": f"V{next(self._counter):08d}", "trigger_id": args["trigger_id"]}
        self.views.append(stored)
        return {"ok": True, "view": stored}

    def _m_views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        """Replace a person's Home tab, as Slack checks it: a ``home`` view of at most 100 valid blocks with unique
        block ids, for a member of the workspace, in an app whose Home tab is enabled (else ``not_enabled``)."""
        if not self.home_tab_enabled:
            return {"ok": False, "error": "not_enabled"}
        view, user = args.get("view"), str(args.get("user_id") or "")
        if not isinstance(view, dict) or not user:
            return {"ok": False, "error": "invalid_arguments"}
        if self.users and user not in self.users:
            return {"ok": False, "error": "user_not_found"}
        errors = [] if view.get("type") == "home" else ["must be a valid enum value [json-pointer:/view/type]"]
        blocks = view.get("blocks") or []
        errors += block_errors(blocks, BLOCKS_PER_MODAL_OR_HOME)
        ids = [str(b["block_id"]) for b in blocks if isinstance(b, dict) and b.get("block_id")]
        errors += [f"duplicate block_id {i!r} [json-pointer:/view/blocks]" for i in sorted({i for i in ids if ids.count(i) > 1})]
        if errors:
            return {"ok": False, "error": "invalid_arguments", "response_metadata": {"messages": errors}}
        earlier = self.homes.get(user)
        stored = {
            **view,
            "id": earlier["id"] if earlier else f"V{next(self._counter):08d}",
            "team_id": self.team_id,
            "app_id": "A0OPSBOT",
            "bot_id": "B0OPSBOT",
            "hash": f"{time.time():.6f}",
            "state": {"values": {}},
        }
        self.homes[user] = stored
        return {"ok": True, "view": stored}

    def _m_views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view = next((v for v in self.views if v["id"] == args.get("view_id")), None)
        if view is None:
            return {"ok": False, "error": "not_found"}
        view.update(args.get("view") or {})
        return {"ok": True, "view": view}

    def _history_json(self, message: Posted, with_metadata: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "message", "ts": message.ts, "text": message.text}
        body.update(
            {"user": message.user} if message.user else {"bot_id": "B0OPSBOT", "user": self.bot_user, "blocks": message.blocks}
        )
        if message.thread_ts:
            body["thread_ts"] = message.thread_ts
        if with_metadata and message.metadata:
            body["metadata"] = message.metadata
        return body

    @staticmethod
    def _flag(args: dict[str, Any], name: str) -> bool:
        """A boolean argument as Slack reads it: ``true``/``1`` (slack_sdk sends ``1``), or JSON true."""
        return str(args.get(name, "")).lower() in {"1", "true"}

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
        with_metadata = self._flag(args, "include_all_metadata")  # Slack leaves metadata out unless asked
        return {
            "ok": True,
            "messages": [self._history_json(m, with_metadata) for m in found[:limit]],
            "has_more": len(found) > limit,
            "response_metadata": {"next_cursor": ""},
        }

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
        return {
            "ok": True,
            "messages": [
                self._history_json(m, self._flag(args, "include_all_metadata")) for m in thread[: int(args.get("limit") or 1000)]
            ],
            "has_more": False,
            "response_metadata": {"next_cursor": ""},
        }

    def _m_reactions_add(self, args: dict[str, Any]) -> dict[str, Any]:
        if str(args.get("channel", "")) not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True}

    def _channel_json(self, channel: Channel) -> dict[str, Any]:
        return {
            "id": channel.id,
            "name": channel.name,
            "is_channel": True,
            "is_private": channel.is_private,
            "is_archived": channel.archived,
            "topic": {"value": channel.topic},
            "num_members": len(channel.members),
        }
