"""Wiring: settings in, services out. The one place that knows which adapter backs which port."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from slack_sdk import WebClient
from sqlalchemy.engine import Engine

from bot.adapters.sql.approvals import SqlApprovalStore
from bot.adapters.sql.audit import SqlAuditLog
from bot.adapters.sql.engine import create_db_engine
from bot.adapters.deploy_providers import ConfiguredProviders
from bot.adapters.sql.deploys import SqlDeployStore
from bot.adapters.sql.flag_history import SqlFlagHistory
from bot.adapters.flag_providers import build_flag_provider
from bot.adapters.redis.lock_waiters import RedisLockWaiters
from bot.adapters.http_health import HttpHealthProbe
from bot.adapters.sql.incidents import SqlIncidentStore
from bot.adapters.redis.store import RedisLockStore, RedisState, connect
from bot.adapters.slack.web_api import SlackGroups, SlackNotifier, make_web_client
from bot.adapters.slack.conversations import SlackConversations
from bot.adapters.redis.watches import RedisWatchStore
from bot.config import OpsConfig, load_config
from bot.domain.shared.context import Services
from bot.jobs import InProcessJobs, RqJobs
from bot.domain.dispatch import Dispatcher
from bot.domain.incidents.timeline import IncidentEventListener
from bot.domain.shared.ports import Clock, SystemClock
from bot.domain import registry
from bot.render import Renderer
from bot.settings import MissingSetting, Settings


@dataclass
class AppServices(Services):
    """The domain's services plus what the edges need: rendering, the Slack client, the stores."""

    renderer: Renderer = field(default=None)  # type: ignore[assignment]
    web_client: WebClient = field(default=None)  # type: ignore[assignment]
    engine: Engine = field(default=None)  # type: ignore[assignment]
    redis: redis.Redis = field(default=None)  # type: ignore[assignment]
    dispatcher: Dispatcher = field(init=False)

    def __deepcopy__(self, memo: dict[int, Any]) -> "AppServices":
        # Bolt deep-copies a request's context for lazy listeners; the services are shared, never copied.
        return self

    def __post_init__(self) -> None:
        super().__post_init__()
        self.dispatcher = Dispatcher(self, registry.subcommands(), registry.jobs())
        if isinstance(self.jobs, InProcessJobs):
            self.jobs.bind(self.dispatcher.run_job)


def embedded_redis() -> redis.Redis:
    """An in-process Redis-compatible store (fakeredis with Lua) for the console and single-process runs."""
    import fakeredis

    return fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)


def redis_client(settings: Settings, *, allow_embedded: bool) -> redis.Redis:
    if settings.redis_url:
        return connect(settings.redis_url)
    if allow_embedded:
        return embedded_redis()
    raise MissingSetting("REDIS_URL", "locks must be shared between replicas (or pass --embedded-redis for a single process)")


def job_queue(settings: Settings, r: redis.Redis, clock: Clock) -> RqJobs | InProcessJobs:
    """RQ on the shared Redis; in-process threads when Redis is embedded (console, single process)."""
    if settings.redis_url and not isinstance(r, embedded_redis_type()):
        return RqJobs(redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2), settings.opsbot_queue, settings.opsbot_redis_prefix)
    return InProcessJobs(clock)


def embedded_redis_type() -> type:
    import fakeredis

    return fakeredis.FakeRedis


def build_services(
    settings: Settings,
    *,
    config: OpsConfig | None = None,
    allow_embedded_redis: bool = False,
    **overrides: Any,
) -> AppServices:
    """Build every adapter from ``settings``; any port or store can be replaced by keyword."""
    config = config or load_config(Path(settings.opsbot_config))
    clock = overrides.pop("clock", None) or SystemClock()
    r = overrides.pop("redis", None) or redis_client(settings, allow_embedded=allow_embedded_redis)
    engine = overrides.pop("engine", None) or create_db_engine(settings.database_url)
    renderer = overrides.pop("renderer", None) or Renderer(settings.opsbot_templates)
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    web_client = overrides.pop("web_client", None) or make_web_client(token, settings.slack_api_url)
    prefix = settings.opsbot_redis_prefix
    parts: dict[str, Any] = {
        "jobs": overrides.pop("jobs", None) or job_queue(settings, r, clock),
        "locks": RedisLockStore(r, clock, prefix),
        "audit": SqlAuditLog(engine, clock),
        "groups": SlackGroups(web_client),
        "notifier": SlackNotifier(web_client, renderer),
        "state": RedisState(r, prefix),
        "approvals": SqlApprovalStore(engine),
        "deploys": SqlDeployStore(engine),
        "deploy_providers": ConfiguredProviders(),
        "lock_waiters": RedisLockWaiters(r, prefix),
        "health": HttpHealthProbe(config),
        "watches": RedisWatchStore(r, clock, prefix),
        "incidents": SqlIncidentStore(engine),
        "conversations": SlackConversations(web_client, renderer),
        "events": IncidentEventListener(),
        "flags": build_flag_provider(config.flags),
        "flag_history": SqlFlagHistory(engine),
    }
    parts.update({k: overrides.pop(k) for k in list(overrides) if k in parts})
    extras = overrides.pop("extras", {})
    overrides_kinds = overrides.pop("approval_kinds", None)
    if overrides:
        raise TypeError(f"unknown service override(s): {', '.join(sorted(overrides))}")
    services = AppServices(
        config=config, clock=clock, extras=extras, approval_kinds=overrides_kinds or registry.approval_kinds(), renderer=renderer, web_client=web_client, engine=engine, redis=r, **parts
    )
    if isinstance(services.events, IncidentEventListener):
        services.events.bind(services)  # open incidents hear about their services' deploys, rollbacks and flag kills
    return services
