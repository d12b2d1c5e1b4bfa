"""Wiring: settings in, a runtime out. The one place that knows which adapter backs which port.

``build_services`` builds every adapter once, then each family once with a dataclass of exactly
what it needs, in the order their dependencies allow (locks → health → incidents → deploy and
flag outcomes → approvals → deploys, flags → audit → alerts → home), then the dispatcher over their declarations.
Nothing is bound after construction and nothing lives in a module global.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from slack_sdk import WebClient
from sqlalchemy.engine import Engine

from bot.adapters.alertmanager import AlertmanagerSilences
from bot.adapters.charts import MatplotlibCharts
from bot.adapters.ci_github import GithubCiStatus
from bot.adapters.deploy_providers import ConfiguredProviders
from bot.adapters.flag_providers import build_flag_provider
from bot.adapters.http_health import HttpHealthProbe
from bot.adapters.local_jobs import InProcessJobs, InProcessWorker
from bot.adapters.metrics import MeteredAuditLog, Metrics, OutboxCollector, RequestLog
from bot.adapters.outbox_delivery import OutboxDelivery
from bot.adapters.pagerduty import PagerDutyEvents, PagerDutyOnCall
from bot.adapters.prometheus import PrometheusReader
from bot.adapters.redis.connection import connect
from bot.adapters.redis.home_viewers import RedisHomeViewers
from bot.adapters.redis.lock_waiters import RedisLockWaiters
from bot.adapters.redis.locks import RedisLockStore
from bot.adapters.redis.state import RedisState
from bot.adapters.redis.watches import RedisWatchStore
from bot.adapters.slack.conversations import SlackConversations
from bot.adapters.slack.files import SlackFiles
from bot.adapters.slack.home import SlackHomeSurface
from bot.adapters.slack.web_api import SlackGroups, SlackNotifier, SlackPeople, make_web_client
from bot.adapters.sql.audit import SqlAuditLog
from bot.adapters.sql.engine import create_db_engine
from bot.adapters.sql.outbox import OutboxTable
from bot.adapters.sql.recent_changes import SqlRecentChanges
from bot.adapters.sql.unit_of_work import EffectSettings, SqlUnitOfWork
from bot.config import OpsConfig, load_config
from bot.domain.alerts.deps import AlertDeps
from bot.domain.alerts.ports import AlertsUnitOfWork, Silences
from bot.domain.alerts.service import Alerts
from bot.domain.approvals.deps import ApprovalDeps
from bot.domain.approvals.ports import ApprovalOutcome
from bot.domain.approvals.service import ApprovalService
from bot.domain.audit.anchors import AnchorDeps, AuditAnchors
from bot.domain.audit.service import AuditCommands, AuditDeps
from bot.domain.deploys.charts import ChartImages, FileUploads, NoFileUploads
from bot.domain.deploys.deps import DeployDeps
from bot.domain.deploys.ports import CiStatus, DeployProviders, DeploysUnitOfWork
from bot.domain.deploys.service import Deploys
from bot.domain.dispatch import Dispatcher, RequestObserver
from bot.domain.flags.deps import FlagDeps
from bot.domain.flags.ports import FlagProvider, FlagsNotConfigured, FlagsUnitOfWork
from bot.domain.flags.service import Flags
from bot.domain.health.deps import HealthDeps
from bot.domain.health.ports import HealthProbe, WatchStore
from bot.domain.health.service import HealthService
from bot.domain.health.watches import HealthWatches
from bot.domain.home.deps import HomeDeps
from bot.domain.home.ports import HomeSurface, HomeViewers, NobodyHome, NoHomeSurface
from bot.domain.home.service import ChangeWatcher, HomeService
from bot.domain.incidents.deps import IncidentDeps
from bot.domain.incidents.ports import Conversations, IncidentsUnitOfWork
from bot.domain.incidents.service import Incidents
from bot.domain.locks.deps import LockDeps
from bot.domain.locks.ports import LockStore, LockWaiters
from bot.domain.locks.service import LockCommands
from bot.domain.locks.waiting import DeployLocks
from bot.domain.shared.changes import NoRecentChanges, RecentChanges
from bot.domain.shared.metrics import MetricsReader, NoMetricsStore
from bot.domain.shared.policy import Actor, Policy
from bot.domain.shared.ports import (
    AuditLog,
    Clock,
    EphemeralState,
    GroupDirectory,
    Jobs,
    Message,
    Notifier,
    PeopleDirectory,
    Reply,
    ServiceEvents,
    ShutdownSignal,
    SystemClock,
)
from bot.domain.status.deps import StatusDeps
from bot.domain.status.service import StatusBoard
from bot.render import Renderer
from bot.settings import MissingSetting, Settings

if TYPE_CHECKING:
    from bot.adapters.redis.jobs import RqJobs  # rq loads only where the queue is RQ, not in the console


@dataclass(frozen=True)
class Adapters:
    """Every port's adapter, built once per process (``build_services``) or from fakes (unit tests)."""

    config: OpsConfig
    clock: Clock
    uow: Callable[[], UnitOfWorks]
    jobs: Jobs
    locks: LockStore
    lock_waiters: LockWaiters
    audit: AuditLog
    groups: GroupDirectory
    people: PeopleDirectory
    notifier: Notifier
    state: EphemeralState
    conversations: Conversations
    deploy_providers: DeployProviders
    health: HealthProbe
    watches: WatchStore
    flags: FlagProvider
    shutdown: ShutdownSignal = field(default_factory=ShutdownSignal)  # SIGTERM: runs hand over within a grace period
    events: ServiceEvents | None = None  # None: open incidents listen (the default)
    approval_outcomes: Mapping[str, ApprovalOutcome] = field(default_factory=dict)  # request kinds of one's own (tests)
    requests: RequestObserver = field(default_factory=lambda: Unobserved())  # counts and logs each request
    silences: Silences | None = None  # None: Alertmanager's API at config.alertmanager.url
    recent_changes: RecentChanges = field(default_factory=NoRecentChanges)  # "what changed"; SQL in build_services
    metrics_reader: MetricsReader = field(default_factory=NoMetricsStore)  # metric guardrails (Prometheus)
    home_surface: HomeSurface = field(default_factory=NoHomeSurface)  # views.publish (unit tests: not wired)
    home_viewers: HomeViewers = field(default_factory=NobodyHome)  # who opened Home lately, publish windows
    charts: ChartImages = field(default_factory=MatplotlibCharts)  # `/ops metrics`' chart
    files: FileUploads = field(default_factory=NoFileUploads)  # the chart's upload (Slack files.uploadV2)
    ci: CiStatus = field(default_factory=GithubCiStatus)  # the CI gate: commit statuses and check runs on GitHub


class Unobserved:
    """A ``RequestObserver`` that notes nothing (unit tests on fakes)."""

    def finished(self, actor: Actor, action: str, outcome: str, seconds: float) -> None:
        return None


class UnitOfWorks(DeploysUnitOfWork, IncidentsUnitOfWork, FlagsUnitOfWork, AlertsUnitOfWork, Protocol):
    """One unit of work that serves every family's port (``SqlUnitOfWork`` does)."""


@dataclass(frozen=True)
class Families:
    """Each family built once, and the dispatcher over their declarations."""

    dispatcher: Dispatcher
    lock_commands: LockCommands
    deploy_locks: DeployLocks
    approvals: ApprovalService
    health: HealthService
    incidents: Incidents
    deploys: Deploys
    flags: Flags
    audit_commands: AuditCommands
    audit_anchors: AuditAnchors
    alerts: Alerts
    home: HomeService


def build_families(a: Adapters) -> Families:
    """Each family with a dataclass of exactly what it needs, in the order their dependencies allow."""
    config, clock = a.config, a.clock
    policy = Policy(
        config.roles.model_dump(), a.groups, {env: e.roles.given() for env, e in config.environments.items() if e.roles.given()}
    )
    lock_deps = LockDeps(
        config=config,
        clock=clock,
        locks=a.locks,
        waiters=a.lock_waiters,
        notifier=a.notifier,
        state=a.state,
        jobs=a.jobs,
        policy=policy,
    )
    deploy_locks = DeployLocks(lock_deps)
    lock_commands = LockCommands(lock_deps, deploy_locks)
    health_deps = HealthDeps(
        config=config,
        clock=clock,
        probe=a.health,
        watches=a.watches,
        notifier=a.notifier,
        jobs=a.jobs,
        state=a.state,
        policy=policy,
        audit=a.audit,
        recent_changes=a.recent_changes,
        metrics=a.metrics_reader,
    )
    health = HealthService(health_deps, HealthWatches(health_deps))
    incidents = Incidents(
        IncidentDeps(
            config=config,
            clock=clock,
            uow=a.uow,
            conversations=a.conversations,
            notifier=a.notifier,
            groups=a.groups,
            jobs=a.jobs,
            policy=policy,
            locks=a.locks,
            deploy_locks=deploy_locks,
            health=health,
            state=a.state,
            recent_changes=a.recent_changes,
            oncall=PagerDutyOnCall(config.pagerduty) if config.pagerduty is not None else None,
        )
    )
    events = a.events if a.events is not None else incidents.events
    deploy_deps = DeployDeps(
        shutdown=a.shutdown,
        config=config,
        clock=clock,
        uow=a.uow,
        providers=a.deploy_providers,
        locks=a.locks,
        deploy_locks=deploy_locks,
        incident_freezes=incidents.freezes,
        health=a.health,
        notifier=a.notifier,
        events=events,
        jobs=a.jobs,
        policy=policy,
        audit=a.audit,
        metrics=a.metrics_reader,
        charts=a.charts,
        files=a.files,
        health_alert=health.alert_context,
        ci=a.ci,
    )
    flag_deps = FlagDeps(
        config=config, clock=clock, provider=a.flags, uow=a.uow, notifier=a.notifier, events=events, policy=policy, audit=a.audit
    )
    deploy_outcomes = Deploys.outcomes_for(deploy_deps)
    flag_outcomes = Flags.outcomes_for(flag_deps)
    outcomes: dict[str, ApprovalOutcome] = {
        "deploy": deploy_outcomes,
        "rollback": deploy_outcomes,
        "flag_unkill": flag_outcomes,
        "flag_rollout": flag_outcomes,
        **a.approval_outcomes,
    }
    approvals = ApprovalService(
        ApprovalDeps(
            config=config,
            clock=clock,
            uow=a.uow,
            notifier=a.notifier,
            jobs=a.jobs,
            policy=policy,
            audit=a.audit,
            outcomes=outcomes,
        )
    )
    deploys = Deploys(deploy_deps, approvals, deploy_outcomes)
    flags = Flags(flag_deps, approvals, flag_outcomes)
    audit_commands = AuditCommands(AuditDeps(config=config, clock=clock, audit=a.audit, state=a.state, policy=policy))
    audit_anchors = AuditAnchors(AnchorDeps(config=config, clock=clock, audit=a.audit, uow=a.uow))
    alerts = Alerts(
        AlertDeps(
            config=config,
            clock=clock,
            uow=a.uow,
            silences=a.silences or AlertmanagerSilences(config.alertmanager),
            incidents=incidents,
            deploys=deploys,
            policy=policy,
            audit=a.audit,
        )
    )
    # The order here is the order of `/ops help`.
    declared = [
        lock_commands.family(),
        audit_commands.family(),
        approvals.family(),
        health.family(),
        deploys.family(),
        flags.family(),
        incidents.family(),
        audit_anchors.family(),
        alerts.family(),
    ]
    # Home reads the families above through their public parts, and refreshes when a request changed what it shows.
    home = HomeService(
        HomeDeps(
            config=config,
            clock=clock,
            uow=a.uow,
            locks=a.locks,
            audit=a.audit,
            policy=policy,
            surface=a.home_surface,
            viewers=a.home_viewers,
            jobs=a.jobs,
            notifier=a.notifier,
            mutating=frozenset("command." + "_".join(s.words) for f in declared for s in f.commands if s.mutates),
        )
    )
    declared.append(home.family())
    observer = ChangeWatcher(a.requests, home)
    return Families(
        dispatcher=Dispatcher(audit=a.audit, policy=policy, families=declared, people=a.people, observer=observer),
        lock_commands=lock_commands,
        deploy_locks=deploy_locks,
        approvals=approvals,
        health=health,
        incidents=incidents,
        deploys=deploys,
        flags=flags,
        audit_commands=audit_commands,
        audit_anchors=audit_anchors,
        alerts=alerts,
        home=home,
    )


@dataclass(frozen=True)
class Runtime:
    """Everything one process runs with: the adapters, each family built once, the dispatcher, and the edges' clients.

    The edges use it: the Bolt app and its handlers (through the narrow ``handlers.common.Operations``),
    `opsbot serve`'s probes, the worker, the console and the tests. The domain never sees it.
    """

    adapters: Adapters
    families: Families
    engine: Engine
    redis: redis.Redis
    web_client: WebClient
    renderer: Renderer
    local_worker: InProcessWorker | None  # runs the jobs when they are in-process (console, tests)
    outbox: OutboxTable  # effects waiting for delivery, for `opsbot outbox` and the deliverer's rounds
    delivery: OutboxDelivery
    metrics: Metrics  # what `GET /metrics` (serve) and OPSBOT_METRICS_PORT (worker) show

    @property
    def config(self) -> OpsConfig:
        return self.adapters.config

    @property
    def dispatcher(self) -> Dispatcher:
        return self.families.dispatcher

    @property
    def approvals(self) -> ApprovalService:
        return self.families.approvals

    @property
    def deploys(self) -> Deploys:
        return self.families.deploys

    @property
    def deploy_locks(self) -> DeployLocks:
        return self.families.deploy_locks

    @property
    def flags(self) -> Flags:
        return self.families.flags

    @property
    def health(self) -> HealthService:
        return self.families.health

    @property
    def incidents(self) -> Incidents:
        return self.families.incidents

    @property
    def audit_commands(self) -> AuditCommands:
        return self.families.audit_commands

    @property
    def alerts(self) -> Alerts:
        return self.families.alerts

    @property
    def status_board(self) -> StatusBoard:
        """The public status page's data (`opsbot serve`'s /status); it keeps no state, so it is built on asking."""
        a = self.adapters
        return StatusBoard(StatusDeps(config=a.config, clock=a.clock, uow=a.uow, health=self.health))

    @property
    def home(self) -> HomeService:
        return self.families.home

    def render(self, message: Message) -> dict[str, Any]:
        return self.renderer.render(message)

    def forget_group(self, group_id: str) -> None:
        """Slack said the members of user group ``group_id`` changed: the next role check reads it again."""
        self.adapters.groups.forget(group_id)

    def tell(self, actor: Actor, reply: Reply) -> None:
        """Answer ephemerally where ``actor`` acted (a modal has no response URL); a DM when there is no channel."""
        if actor.channel_id:
            self.adapters.conversations.tell(actor.channel_id, actor.user_id, reply.message)
        else:
            self.adapters.notifier.dm(actor.user_id, reply.message)

    def close(self) -> None:
        """Ask runs in flight to stop (``adapters.shutdown``), stop the in-process job threads, if any, and close the
        Prometheus client's connection pool. Other connections close with the process."""
        self.adapters.shutdown.request()
        if self.local_worker is not None:
            self.local_worker.close()
        self.adapters.metrics_reader.close()


def embedded_redis() -> redis.Redis:
    """An in-process Redis-compatible store (fakeredis with Lua) for the console and single-process runs."""
    # fakeredis imports numpy when it can, only for Redis' vector sets, which opsbot never uses: a third of
    # `opsbot console`'s start-up (bench/console_startup.py). numpy is hidden while fakeredis loads, then given back
    # (the /ops metrics chart imports it for real).
    hidden = "numpy" not in sys.modules
    if hidden:
        sys.modules["numpy"] = None  # type: ignore[assignment]  # None in sys.modules: `import numpy` raises ImportError
    try:
        import fakeredis
    finally:
        if hidden:
            del sys.modules["numpy"]

    return fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)


def is_embedded(r: redis.Redis) -> bool:
    """Whether ``r`` is the in-process store; told without importing fakeredis (and numpy with it: about 20 MB a worker)."""
    return type(r).__module__.startswith("fakeredis")


def redis_client(settings: Settings, *, allow_embedded: bool) -> redis.Redis:
    if settings.redis_url:
        return connect(settings.redis_url)
    if allow_embedded:
        return embedded_redis()
    raise MissingSetting("REDIS_URL", "locks must be shared between replicas (or pass --embedded-redis for a single process)")


def job_queue(settings: Settings, r: redis.Redis, clock: Clock, metrics: Metrics | None = None) -> RqJobs | InProcessJobs:
    """RQ on the shared Redis; in-process threads when Redis is embedded (console, single process).

    The queue's connection retries a command through a short blip (redis-py's ``Retry`` with backoff) and checks
    an idle connection before using it; a longer outage reaches the caller as ``Unavailable``.
    """
    if settings.redis_url and not is_embedded(r):
        from bot.adapters.redis.jobs import RqJobs

        connection = redis.Redis.from_url(
            settings.redis_url,
            socket_timeout=5,
            socket_connect_timeout=2,
            health_check_interval=10,
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.1), 2),
            retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        )
        return RqJobs(connection, settings.opsbot_queue, settings.opsbot_redis_prefix, metrics=metrics)
    return InProcessJobs(clock)


def build_services(
    settings: Settings,
    *,
    config: OpsConfig | None = None,
    allow_embedded_redis: bool = False,
    clock: Clock | None = None,
    redis: redis.Redis | None = None,
    engine: Engine | None = None,
    renderer: Renderer | None = None,
    web_client: WebClient | None = None,
    **overrides: Any,
) -> Runtime:
    """Build every adapter from ``settings``, then every family; any field of ``Adapters`` can be replaced by keyword.

    Raises MissingSetting (a setting the process needs is not set) or ConfigError (the ops config is invalid).
    """
    names = {f.name for f in fields(Adapters)} - {"config", "clock", "uow", "requests"}
    unknown = set(overrides) - names
    if unknown:
        raise TypeError(f"unknown service override(s): {', '.join(sorted(unknown))}")
    config = config or load_config(Path(settings.opsbot_config))
    clock = clock or SystemClock()
    r = redis if redis is not None else redis_client(settings, allow_embedded=allow_embedded_redis)
    engine = engine or create_db_engine(settings.database_url)
    renderer = renderer or Renderer(settings.opsbot_templates)
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    metrics = Metrics()
    web_client = web_client or make_web_client(token, settings.slack_api_url, metrics=metrics)
    prefix = settings.opsbot_redis_prefix
    built = engine
    jobs: Jobs = overrides["jobs"] if "jobs" in overrides else job_queue(settings, r, clock, metrics)
    audit: AuditLog = MeteredAuditLog(overrides["audit"] if "audit" in overrides else SqlAuditLog(built, clock), metrics)
    outbox_table = OutboxTable(built, clock)
    metrics.scrape_time(OutboxCollector(outbox_table, clock))
    delivery = OutboxDelivery(
        outbox_table,
        make_web_client(token, settings.slack_api_url, rate_limit_retries=0, connection_retries=0, metrics=metrics),
        jobs,
        clock,
        audit,
        pager=PagerDutyEvents(config.pagerduty) if config.pagerduty is not None else None,
    )
    effects = EffectSettings(renderer, clock, timedelta(minutes=config.durability.effect_deadline_minutes), delivery)

    def uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(built, effects)

    defaults: dict[str, Callable[[], Any]] = {
        "jobs": lambda: jobs,
        "locks": lambda: RedisLockStore(r, clock, prefix),
        "lock_waiters": lambda: RedisLockWaiters(r, prefix),
        "audit": lambda: audit,
        "groups": lambda: SlackGroups(web_client),
        "people": lambda: SlackPeople(web_client),
        "notifier": lambda: SlackNotifier(web_client, renderer),
        "state": lambda: RedisState(r, prefix),
        "conversations": lambda: SlackConversations(web_client, renderer),
        "deploy_providers": ConfiguredProviders,
        "health": lambda: HttpHealthProbe(config, metrics=metrics),
        "watches": lambda: RedisWatchStore(r, clock, prefix),
        "flags": lambda: build_flag_provider(config.flags) or FlagsNotConfigured(),
        "metrics_reader": lambda: PrometheusReader(config.prometheus) if config.prometheus else NoMetricsStore(),
        "home_surface": lambda: SlackHomeSurface(web_client, renderer),
        "home_viewers": lambda: RedisHomeViewers(r, prefix),
        "files": lambda: SlackFiles(web_client),
    }
    parts = {name: overrides[name] if name in overrides else make() for name, make in defaults.items()}
    extra: dict[str, Any] = {
        name: overrides[name] for name in ("events", "approval_outcomes", "silences", "ci") if name in overrides
    }
    extra["recent_changes"] = overrides.get("recent_changes") or SqlRecentChanges(built, config)
    adapters = Adapters(config=config, clock=clock, uow=uow, **parts, **extra, requests=RequestLog(metrics))
    families = build_families(adapters)
    queue = adapters.jobs
    local_worker = InProcessWorker(queue, families.dispatcher.run_job) if isinstance(queue, InProcessJobs) else None
    return Runtime(
        adapters=adapters,
        families=families,
        engine=engine,
        redis=r,
        web_client=web_client,
        renderer=renderer,
        local_worker=local_worker,
        outbox=outbox_table,
        delivery=delivery,
        metrics=metrics,
    )
