"""Test helpers: the test ops config, a bot wired to real stores and the Slack emulator, signed requests."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from pydantic import SecretStr
from slack_bolt import BoltRequest, BoltResponse

from bot.adapters.local_jobs import InProcessJobs
from bot.app import create_app
from bot.config import OpsConfig, dump_config, parse_config
from bot.console import payloads
from bot.console.slack_emulator import Posted, SlackEmulator
from bot.domain.shared.ports import SystemClock
from bot.settings import Settings
from bot.wiring import Runtime, build_services


def _shared_slack() -> Path:
    """Slack's reference data: $OPSBOT_SHARED_SLACK, else the nearest ``shared/slack`` beside the checkout or above it."""
    if os.environ.get("OPSBOT_SHARED_SLACK"):
        return Path(os.environ["OPSBOT_SHARED_SLACK"])
    for folder in Path(__file__).resolve().parents[1].parents:
        if (folder / "shared" / "slack").is_dir():
            return folder / "shared" / "slack"
    return Path(__file__).resolve().parents[2] / "shared" / "slack"


SHARED_SLACK = _shared_slack()
OPS_CHANNEL = "C0OPS"
USERS = {
    "U0ADMIN": "alice",
    "U0APPROVER1": "bob",
    "U0APPROVER2": "carol",
    "U0APPROVER3": "dan",
    "U0DEV": "dave",
    "U0DEV2": "dora",
    "U0VIEWER": "erin",
    "U0NOBODY": "nobody",
}
CONFIG: dict[str, Any] = {
    # Short windows: a lost lock stops a run within a second, a run without a heartbeat for 3 s is stale.
    "durability": {
        "heartbeat_seconds": 0.5,
        "stale_after_seconds": 3,
        "reconcile_every_seconds": 1,
        "never_started_after_seconds": 5,
        "deliver_every_seconds": 0.2,
        "shutdown_grace_seconds": 2,
    },
    "channels": {"deployments": "C0DEPLOYS", "incidents": "C0INCIDENTS", "alerts": "C0ALERTS"},
    "roles": {
        "admin": ["U0ADMIN"],
        "approver": ["S0SRE", "U0APPROVER3"],
        "deployer": ["U0DEV", "U0DEV2", "S0SRE"],
        "viewer": ["U0VIEWER"],
    },
    "environments": {
        "staging": {"approvals": 0},
        "production": {"approvals": 2, "rollback_approvals": 1, "freeze_windows": ["SUN 02:00-04:00 UTC"]},
    },
    "default_service": "api",
    "services": {
        "api": {"environments": ["staging", "production"]},
        "web": {"environments": ["staging", "production"], "version_pattern": "git_sha"},
        "worker": {"environments": ["staging"]},
    },
}


def config_data(**changes: Any) -> dict[str, Any]:
    """The test config as data, with top-level keys replaced by ``changes``."""
    data = copy.deepcopy(CONFIG)
    data.update(changes)
    return data


def make_config(**changes: Any) -> OpsConfig:
    return parse_config(config_data(**changes), "test")


class FrozenClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.moment = start or datetime(2026, 11, 23, 14, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


def start_emulator(config: OpsConfig) -> SlackEmulator:
    emulator = SlackEmulator().start()
    for uid, name in USERS.items():
        emulator.add_user(uid, name)
    emulator.add_usergroup("S0SRE", ["U0APPROVER1", "U0APPROVER2"])
    everyone = list(USERS)
    emulator.add_channel(OPS_CHANNEL, "ops", everyone)
    for name in ("deployments", "incidents", "alerts", "audit"):
        if getattr(config.channels, name):
            emulator.add_channel(getattr(config.channels, name), name, everyone)
    return emulator


class Reads:
    """Repository reads for assertions, each in a unit of work of its own: ``bot.reads.deploys.history(None, None, 10)``."""

    def __init__(self, uow: Callable[[], Any]) -> None:
        self._uow = uow

    def __getattr__(self, repository: str) -> Any:
        uow = self._uow

        class Repository:
            def __getattr__(self, method: str) -> Callable[..., Any]:
                def call(*args: Any, **kwargs: Any) -> Any:
                    with uow() as unit:
                        return getattr(getattr(unit, repository), method)(*args, **kwargs)

                return call

        return Repository()


def autocommit(engine: Any, repository: str) -> Any:
    """A repository whose every call runs in a unit of work of its own and commits: ``autocommit(engine, "deploys").get(id)``."""
    from bot.adapters.sql.unit_of_work import SqlUnitOfWork

    class Repository:
        def __getattr__(self, method: str) -> Callable[..., Any]:
            def call(*args: Any, **kwargs: Any) -> Any:
                with SqlUnitOfWork(engine) as unit:
                    result = getattr(getattr(unit, repository), method)(*args, **kwargs)
                    unit.commit()
                    return result

            return call

    return Repository()


OPEN_BOTS: list[Bot] = []  # closed after each test by the autouse fixture in tests/conftest.py


class Bot:
    """The real Bolt app on real stores, spoken to with signed requests in Slack's shapes.

    Background jobs run on threads of this process by default; with ``redis_url`` they go through
    RQ on the real Redis, and ``worker()`` runs a real `opsbot worker` process for them.
    """

    def __init__(
        self,
        *,
        emulator: SlackEmulator,
        db_url: str,
        redis_client: redis.Redis,
        prefix: str,
        config: OpsConfig,
        redis_url: str | None = None,
        **overrides: Any,
    ) -> None:
        self.emulator = emulator
        self.config = config
        self.secret = secrets.token_hex(16)
        self.settings = Settings(
            slack_bot_token=SecretStr(emulator.token),
            slack_signing_secret=SecretStr(self.secret),
            slack_api_url=emulator.api_url,
            database_url=db_url,
            opsbot_redis_prefix=prefix,
            redis_url=redis_url,
            opsbot_queue=f"{prefix}jobs",
        )
        if redis_url is None and "jobs" not in overrides:
            overrides["jobs"] = InProcessJobs(overrides.get("clock") or SystemClock())
        self.services: Runtime = build_services(self.settings, config=config, redis=redis_client, **overrides)
        self.app = create_app(self.settings, self.services)
        self.reads = Reads(self.services.adapters.uow)
        OPEN_BOTS.append(self)

    def close(self) -> None:
        """Stop this bot's job threads and tell runs still going that the process is stopping (the test is over)."""
        self.services.close()

    def environment(self, config_path: Path) -> dict[str, str]:
        """The environment an `opsbot` process needs to share this bot's stores, Slack and config."""
        config_path.write_text(dump_config(self.config), encoding="utf-8")
        s = self.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPSBOT_", "DATABASE_URL", "REDIS_URL"))}
        env.update(
            {
                "SLACK_BOT_TOKEN": self.emulator.token,
                "SLACK_SIGNING_SECRET": self.secret,
                "SLACK_API_URL": s.slack_api_url,
                "DATABASE_URL": s.database_url,
                "REDIS_URL": s.redis_url or "",
                "OPSBOT_CONFIG": str(config_path),
                "OPSBOT_REDIS_PREFIX": s.opsbot_redis_prefix,
                "OPSBOT_QUEUE": s.opsbot_queue,
            }
        )
        return env

    @contextlib.contextmanager
    def worker(self, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
        """A real `opsbot worker` (RQ, with its scheduler) on this bot's queue, stopped afterwards."""
        assert self.settings.redis_url, "pass redis_url to Bot to use a real worker"
        log = (tmp_path / f"worker-{secrets.token_hex(3)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "worker"],
            env=self.environment(tmp_path / "opsbot.yml"),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()

    def dispatch(
        self, body: str, headers: dict[str, str] | None = None, content_type: str = "application/x-www-form-urlencoded"
    ) -> BoltResponse:
        """Bolt's own dispatch, exactly as its HTTP adapters call it."""
        headers = headers if headers is not None else payloads.sign(self.secret, body, content_type=content_type)
        return self.app.dispatch(BoltRequest(body=body, headers=headers))

    def command(self, text: str, user: str = "U0DEV", channel: str = OPS_CHANNEL, timeout: float = 5.0) -> Posted:
        """Run `/ops text` and return the reply the user sees."""
        url = self.emulator.response_url(channel, user)
        body = payloads.slash_command(
            text, user_id=user, channel_id=channel, response_url=url, trigger_id=self.emulator.trigger_id()
        )
        response = self.dispatch(body)
        assert response.status == 200, (response.status, response.body)
        return self.reply_to(url, timeout)

    def reply_to(self, url: str, timeout: float = 5.0) -> Posted:
        key = url.rsplit("/", 1)[-1]
        return self.emulator.wait_for(lambda: next((m for m in self.emulator.messages if m.response_key == key), None), timeout)

    def click(self, message: Posted, label: str, user: str, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Press the button labelled ``label`` on ``message`` as ``user``; returns the payloads sent to its response URL."""
        button = next(b for b in message.buttons() if b["text"]["text"] == label)
        url = self.emulator.response_url(message.channel, user, message.ts)
        body = payloads.block_action(
            user_id=user,
            channel_id=message.channel,
            message_ts=message.ts,
            action=button,
            response_url=url,
            is_ephemeral=message.ephemeral_to is not None,
            trigger_id=self.emulator.trigger_id(),
        )
        response = self.dispatch(body)
        assert response.status == 200, (response.status, response.body)
        calls = self.emulator.wait_for(lambda: self.emulator.responses(url), timeout)
        return [
            {**c.args, "text": Posted("", "", str(c.args.get("text", "")), list(c.args.get("blocks") or [])).seen()}
            for c in calls
        ]

    def tick(self, message: Posted, item: str, user: str, ticked: bool = True, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Click the checkbox of ``item`` on ``message`` as ``user``, leaving it ticked (or unticked): Slack sends that
        element's ``selected_options`` after the click. Returns the payloads sent to the response URL."""
        element, block_id = next(
            (e, block.get("block_id", ""))
            for block in message.blocks
            for e in block.get("elements") or []
            if e.get("type") == "checkboxes" and any(o["text"]["text"] == item for o in e.get("options", []))
        )
        chosen = [o for o in element["options"] if o["text"]["text"] == item] if ticked else []
        url = self.emulator.response_url(message.channel, user, message.ts)
        body = payloads.block_action(
            user_id=user,
            channel_id=message.channel,
            message_ts=message.ts,
            action={**element, "block_id": block_id, "selected_options": chosen},
            response_url=url,
            trigger_id=self.emulator.trigger_id(),
        )
        response = self.dispatch(body)
        assert response.status == 200, (response.status, response.body)
        calls = self.emulator.wait_for(lambda: self.emulator.responses(url), timeout)
        return [
            {**c.args, "text": Posted("", "", str(c.args.get("text", "")), list(c.args.get("blocks") or [])).seen()}
            for c in calls
        ]

    def audit_actions(self) -> list[tuple[str, str, str]]:
        """(actor, action, outcome) of every audit row, oldest first."""
        return [(r["actor"], r["action"], r["outcome"]) for r in self.services.adapters.audit.rows()]  # type: ignore[attr-defined]


def eventually(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def with_button_value(message: Posted, label: str, value: str) -> Posted:
    """``message`` as a crafted copy whose ``label`` button carries ``value`` (another app or a replayed payload)."""
    blocks: list[dict[str, Any]] = copy.deepcopy(message.blocks)
    for block in blocks:
        for element in block.get("elements") or []:
            if element.get("type") == "button" and element["text"]["text"] == label:
                element["value"] = value
    return dataclasses.replace(message, blocks=blocks)
