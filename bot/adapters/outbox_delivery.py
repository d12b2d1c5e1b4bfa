"""Delivering the outbox: Slack posts, edits and pins, and jobs for the queue, each at least once and never twice.

Right after a unit of work commits, its effects are tried at once (``deliver``); what did not go through
is retried by `opsbot worker` (``drain``, every ``durability.deliver_every_seconds``): after Slack's
``Retry-After`` on 429, with exponential backoff and jitter on 5xx, timeouts, lost connections and a
Redis that is down, until the effect's deadline (``durability.effect_deadline_minutes``). Then it is
recorded as failed, with an audit row, where `opsbot outbox list` shows it.

Idempotency: a post records which message its key became (``slack_messages``); delivering the key again
edits that message. A post whose earlier attempt may have reached Slack (the answer was lost) first looks
for the message in the channel's recent history by its metadata (the key travels in the message's
``metadata``), so a lost answer does not become a twin. Jobs carry their key to the queue, which queues
a key once. Effects of one stream (a channel; a job key) go out in the order they were recorded.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.adapters.sql.outbox import FAILED, PENDING, SUPERSEDED, Effect, OutboxTable
from bot.domain.shared.errors import OpsError, Unavailable
from bot.domain.shared.ports import AuditEntry, AuditLog, Clock, Jobs, Pending
from bot.domain.shared.text import plural

log = logging.getLogger("opsbot.outbox")
METADATA_TYPE = "opsbot_message"
IN_FLIGHT_WAIT_SECONDS = 5.0  # how long a delivery waits for an older effect another thread is delivering
HISTORY_LOOKBACK = 200  # messages read back when an earlier attempt may have posted
BACKOFF_CAP_SECONDS = 60.0
# Slack's answers that no retry will change: the effect fails at once, with the error for operators.
PERMANENT = {
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "invalid_blocks",
    "invalid_blocks_format",
    "msg_too_long",
    "no_text",
    "missing_scope",
    "message_not_found",
    "cant_update_message",
    "edit_window_closed",
    "user_not_found",
    "cannot_dm_bot",
    "invalid_arguments",
    "restricted_action",
}
DONE_ALREADY = {"already_pinned", "no_pin"}


class Retry(Exception):
    """Not now: try again after ``after`` seconds (None: the backoff decides)."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.after = reason, after


class Permanent(Exception):
    """No retry will deliver it."""


class Pager(Protocol):
    """Sends a PagerDuty event; raises ``Retry`` or ``Permanent`` (``bot.adapters.pagerduty.PagerDutyEvents``)."""

    def send(self, event: dict[str, Any]) -> None: ...


class OutboxDelivery:
    """Delivers effects through Slack's Web API and the job queue, recording each attempt in the outbox table."""

    def __init__(
        self,
        table: OutboxTable,
        client: WebClient,
        jobs: Jobs,
        clock: Clock,
        audit: AuditLog,
        jitter: Callable[[], float] = random.random,
        pager: Pager | None = None,
    ) -> None:
        self._pager = pager
        self._table = table
        self._client = client
        self._jobs = jobs
        self._clock = clock
        self._audit = audit
        self._jitter = jitter

    def deliver(self, ids: list[int]) -> list[Pending]:
        """Try the effects one unit of work recorded, now and in order; the ones that still wait.

        An effect waits for the older effects of its stream: those that are due are delivered first, one being
        delivered by another thread is waited for (up to ``IN_FLIGHT_WAIT_SECONDS``); one waiting for its retry
        (a 429's Retry-After, a backoff) keeps this one waiting too, for the worker's rounds.
        """
        done: set[int] = set()  # delivered (or superseded) by this call: nothing to read back for them
        with self._table.batch():
            for effect in self._table.get_many(ids):
                if effect.state != PENDING or not self._clear_ahead_of(effect):
                    continue
                if (claimed := self._table.claim(effect.id)) is not None and self._attempt(claimed):
                    done.add(effect.id)
            rest = [effect_id for effect_id in ids if effect_id not in done]
            return [self._pending(effect) for effect in self._table.undelivered_of(rest)] if rest else []

    def _clear_ahead_of(self, effect: Effect) -> bool:
        """Deliver (or wait for) the older effects of ``effect``'s stream; True when none is left ahead of it."""
        deadline = time.monotonic() + IN_FLIGHT_WAIT_SECONDS
        while (blocker := self._table.blocked_by(effect)) is not None:
            if blocker.next_attempt_at > self._clock.now():
                return False  # it waits for its retry: so does everything behind it
            if (claimed := self._table.claim(blocker.id)) is not None:
                self._attempt(claimed)
            elif time.monotonic() < deadline:
                time.sleep(0.02)  # another thread is delivering it right now
            else:
                return False
        return True

    def drain(self, limit: int = 100) -> int:
        """One pass over due effects (each the oldest waiting one of its stream); how many were attempted."""
        attempted = 0
        with self._table.batch():
            for effect in self._table.due(limit):
                if (claimed := self._table.claim(effect.id)) is not None:
                    self._attempt(claimed)
                    attempted += 1
        return attempted

    def _pending(self, effect: Effect) -> Pending:
        waiting_for = (
            "Slack"
            if effect.kind.startswith("slack.")
            else "PagerDuty"
            if effect.kind.startswith("pager.")
            else "the job queue (Redis)"
        )
        return Pending(
            effect.kind,
            effect.key,
            waiting_for,
            effect.last_error or "waiting behind an earlier message",
            effect.deadline_at,
            gave_up=effect.state == FAILED,
        )

    def _attempt(self, effect: Effect) -> bool:
        """Deliver a claimed effect, or schedule its retry, or give it up; True when it was delivered (or superseded)."""
        now = self._clock.now()
        if now >= effect.deadline_at:
            self._give_up(
                effect,
                f"not delivered by its deadline after {plural(effect.attempts - 1, 'attempt')}: {effect.last_error or 'no answer'}",
            )
            return False
        try:
            posted = self._perform(effect)
        except Retry as wait:
            delay = wait.after if wait.after is not None else self._backoff(effect.attempts - 1)
            # A Retry-After (Slack's 429) says when, and that nothing was done: it does not count as an attempt.
            self._table.retry_at(effect.id, now + timedelta(seconds=delay), wait.reason, did_nothing=wait.after is not None)
            log.warning("outbox %s %s (%s): %s; retrying in %.1f s", effect.id, effect.kind, effect.origin, wait.reason, delay)
        except Permanent as refused:
            self._give_up(effect, str(refused))
        except Exception as exc:  # an unexpected failure is retried like a transient one, and logged in full
            log.exception("outbox %s %s (%s) failed", effect.id, effect.kind, effect.origin)
            self._table.retry_at(
                effect.id, now + timedelta(seconds=self._backoff(effect.attempts - 1)), f"{type(exc).__name__}: {exc}"
            )
        else:
            if posted == SUPERSEDED:
                self._table.delivered(effect.id, state=SUPERSEDED)
            else:
                self._table.delivered(effect.id, posted=posted if isinstance(posted, tuple) else None)
            return True
        return False

    def _backoff(self, attempts: int) -> float:
        """1, 2, 4 … seconds (capped at a minute), times a random factor between 1 and 1.5 so retries spread out."""
        return min(BACKOFF_CAP_SECONDS, 2.0**attempts * (1 + self._jitter() / 2))

    def _give_up(self, effect: Effect, why: str) -> None:
        self._table.failed(effect.id, why)
        log.error("outbox %s %s (%s) failed for good: %s", effect.id, effect.kind, effect.origin, why)
        try:
            self._audit.record(
                AuditEntry(
                    actor="opsbot",
                    action="outbox.failed",
                    outcome="failed",
                    target=effect.origin[:200],
                    params={"effect": effect.id, "kind": effect.kind, "key": effect.key, "attempts": effect.attempts},
                    error=why,
                    source="job",
                )
            )
        except Unavailable:
            log.error("audit log unavailable; outbox %s failed: %s", effect.id, why)

    # ----- performing one effect -----
    def _perform(self, effect: Effect) -> tuple[str, str, str] | str | None:
        kind = effect.kind
        if kind in ("slack.post", "slack.dm"):
            return self._post(effect)
        if kind == "slack.update":
            if self._table.later_update(effect):
                return SUPERSEDED
            channel, ts = self._message_of(effect)
            self._slack(lambda: self._client.chat_update(channel=channel, ts=ts, **self._content(effect)))
            return None
        if kind in ("slack.pin", "slack.unpin"):
            channel, ts = self._message_of(effect)
            call = self._client.pins_add if kind == "slack.pin" else self._client.pins_remove
            self._slack(lambda: call(channel=channel, timestamp=ts), done_already=DONE_ALREADY)
            return None
        if kind.startswith("job."):
            self._job(effect)
            return None
        if kind == "pager.event":
            if self._pager is None:
                raise Permanent("PagerDuty is not configured (`pagerduty` in the ops config)")
            self._pager.send(effect.payload)
            return None
        raise Permanent(f"unknown effect kind {kind!r}")

    def _content(self, effect: Effect) -> dict[str, Any]:
        return {"text": effect.payload.get("text", ""), "blocks": effect.payload.get("blocks") or []}

    def _message_of(self, effect: Effect) -> tuple[str, str]:
        found = self._table.message(effect.key)
        if found is None:
            raise Permanent(f"the message {effect.key} was never posted, so it cannot be edited or pinned")
        return found

    def _post(self, effect: Effect) -> tuple[str, str, str] | None:
        key = effect.key
        existing = self._table.message(key)
        # ``attempts`` counts this attempt too (claims count): above 1, an earlier one may have reached Slack.
        if existing is None and effect.attempts > 1 and effect.kind == "slack.post" and effect.target:
            existing = self._find_posted(effect.target, key, effect.created_at)
            if existing is not None:
                log.info("outbox %s: %s was posted by an earlier attempt; editing it instead", effect.id, key)
        if existing is not None:
            channel, ts = existing
            self._slack(lambda: self._client.chat_update(channel=channel, ts=ts, **self._content(effect)))
            return key, channel, ts
        metadata = {"event_type": METADATA_TYPE, "event_payload": {"key": key}}
        response = self._slack(
            lambda: self._client.chat_postMessage(
                channel=str(effect.target), unfurl_links=False, metadata=metadata, **self._content(effect)
            )
        )
        return key, str(response["channel"]), str(response["ts"])

    def _find_posted(self, channel: str, key: str, since: datetime) -> tuple[str, str] | None:
        """The message an earlier attempt posted under ``key``, read back by its metadata; None when there is none."""
        response = self._slack(
            lambda: self._client.conversations_history(
                channel=channel, oldest=f"{since.timestamp() - 60:.6f}", limit=HISTORY_LOOKBACK, include_all_metadata=True
            )
        )
        for message in response.get("messages") or []:
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if payload.get("key") == key:
                return channel, str(message["ts"])
        return None

    def _slack(self, call: Callable[[], Any], done_already: set[str] | frozenset[str] = frozenset()) -> Any:
        try:
            return call()
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown_error"))
            status = getattr(exc.response, "status_code", 200)
            if error in done_already:
                return None
            if status == 429 or error == "ratelimited":
                retry_after = (exc.response.headers or {}).get("Retry-After") or (exc.response.headers or {}).get("retry-after")
                raise Retry(
                    f"Slack is rate limiting (429, Retry-After {retry_after or '?'} s)", float(retry_after or 1)
                ) from None
            if status >= 500 or error in {"service_unavailable", "fatal_error", "internal_error", "request_timeout"}:
                raise Retry(f"Slack answered {status} ({error})") from None
            if error in PERMANENT:
                raise Permanent(f"Slack refused it: {error}") from None
            raise Retry(f"Slack refused it: {error}") from None
        except (URLError, TimeoutError, ConnectionError, OSError) as exc:
            raise Retry(f"Slack could not be reached ({type(exc).__name__})") from None

    def _job(self, effect: Effect) -> None:
        try:
            if effect.kind == "job.submit":
                self._jobs.submit(str(effect.target), effect.payload, key=effect.key)
            elif effect.kind == "job.schedule":
                assert effect.run_at is not None
                self._jobs.schedule(effect.run_at, str(effect.target), effect.payload, key=effect.key)
            elif effect.kind == "job.cancel":
                self._jobs.cancel(effect.key)
            else:
                raise Permanent(f"unknown job effect {effect.kind!r}")
        except Unavailable as exc:
            raise Retry(exc.detail or exc.what) from None
        except OpsError as exc:
            raise Retry(exc.message) from None
