"""The `opsbot` command: serve, socket, console, worker, db, check-config, audit, outbox."""

from __future__ import annotations

import argparse
import csv
import gc
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.domain.shared.errors import OpsError
from bot.domain.shared.text import plural

if TYPE_CHECKING:
    from bot.config import OpsConfig
    from bot.settings import Settings

# Importing this module stays cheap (no pydantic, no config models): main() starts, and a command imports what it needs,
# so `opsbot console` can start up with the garbage collector paused (_collector_paused) from its first heavy import.

EXAMPLE_CONFIG = "opsbot.example.yml"
PAST = {"retry": "retried", "drop": "dropped"}  # `opsbot outbox <action>`, said of an effect


def _settings() -> Settings:
    from pydantic import ValidationError

    from bot.settings import MissingSetting, Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        variable = str(first["loc"][0]).upper()
        given = os.environ.get(variable, os.environ.get(variable.lower()))
        if given is None:
            raise MissingSetting(variable, first["msg"]) from None
        private = any(word in variable for word in ("SECRET", "TOKEN", "URL", "PASSWORD", "KEY"))  # may carry a secret
        shown = given if len(given) <= 40 and not private else "(the value set)"
        raise MissingSetting(variable, first["msg"], problem=f"={shown} is not usable") from None
    templates = settings.opsbot_templates
    if templates is not None and not templates.is_dir():
        what = "does not exist" if not templates.exists() else "is not a folder"
        raise MissingSetting(
            "OPSBOT_TEMPLATES", f"{templates} {what}; it names a folder of template overrides", problem="is wrong"
        )
    return settings


def _config(settings: Settings) -> OpsConfig:
    from bot.config import load_config

    return load_config(Path(settings.opsbot_config))


def _setup_logging(settings: Settings) -> None:
    from bot.logs import setup_logging

    setup_logging(settings.log_level, settings.log_format, secrets=settings.secret_values())


@contextmanager
def _database_problems(url: str) -> Iterator[None]:
    """The database's start-up errors as one line (``NotMigrated``, exit 2): unreachable, or migrated past this opsbot."""
    from sqlalchemy.exc import DBAPIError

    from bot.adapters.sql.engine import reason_of

    try:
        yield
    except DBAPIError as exc:
        raise NotMigrated(f"the database at {_safe_url(url)} cannot be used: {reason_of(exc)}") from None
    except Exception as exc:
        if not type(exc).__module__.startswith("alembic."):  # alembic loads only when needed: told by its module
            raise
        raise NotMigrated(
            f"the database at {_safe_url(url)} has a schema this opsbot does not know ({str(exc).splitlines()[0][:160]}); "
            "was it migrated by a newer opsbot?"
        ) from None


def _ready_database(settings: Settings, *, migrate: bool) -> None:
    from bot.adapters.sql.engine import create_db_engine, pending_migrations, schema_at_head, upgrade

    engine = create_db_engine(settings.database_url)
    with _database_problems(settings.database_url), _disposing(engine):
        if schema_at_head(engine):  # the common case, told without loading alembic
            return
        if migrate:
            upgrade(settings.database_url)
        elif pending := pending_migrations(engine):
            raise NotMigrated(
                f"the database at {_safe_url(settings.database_url)} is not migrated ({plural(len(pending), 'migration')} to apply: "
                f"{', '.join(sorted(pending)[:3])}{' …' if len(pending) > 3 else ''}); run `opsbot db upgrade` first"
            )


@contextmanager
def _disposing(engine: Any) -> Iterator[None]:
    try:
        yield
    finally:
        engine.dispose()


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.server import serve
    from bot.settings import MissingSetting

    settings = _settings()
    if args.port:
        settings = settings.model_copy(update={"port": args.port})
    settings.require("SLACK_SIGNING_SECRET", "Slack signs every request with it")
    settings.require("SLACK_BOT_TOKEN", "the bot posts with it")
    if not settings.redis_url and not args.embedded_redis:
        raise MissingSetting("REDIS_URL", "locks must be shared between replicas (or pass --embedded-redis for a single process)")
    _config(settings)
    _ready_database(settings, migrate=False)
    _setup_logging(settings)
    serve(settings, embedded_redis=args.embedded_redis)
    return 0


def cmd_socket(args: argparse.Namespace) -> int:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from bot.app import create_app, listener_pool
    from bot.settings import MissingSetting
    from bot.wiring import build_services

    settings = _settings()
    app_token = settings.require("SLACK_APP_TOKEN", "Socket Mode connects with the app-level token (xapp-…)")
    settings.require("SLACK_BOT_TOKEN", "the bot posts with it")
    if not settings.redis_url and not args.embedded_redis:
        raise MissingSetting("REDIS_URL", "locks must be shared between replicas (or pass --embedded-redis for a single process)")
    config = _config(settings)
    _ready_database(settings, migrate=False)
    _setup_logging(settings)
    sys.setswitchinterval(settings.opsbot_gil_switch_ms / 1000)  # acks wait less behind running commands (bot/server.py)
    services = build_services(settings, config=config, allow_embedded_redis=args.embedded_redis)
    if services.local_worker is not None:  # no `opsbot worker` in a single process: deliver and reconcile here
        from bot.background import Background

        Background(services).start()
    # slack_sdk's client calls a connection stale after 4 ping intervals without a pong and then reconnects: at its
    # default of 10 s a silently dropped socket leaves opsbot deaf for 40 s; at 3 s, for about 12.
    app = create_app(settings, services, mode="socket", executor=listener_pool(settings.opsbot_listener_nice))
    handler = SocketModeHandler(app, app_token, ping_interval=SOCKET_PING_SECONDS)
    _open_socket(handler.connect)
    threading.Event().wait()  # SocketModeHandler.start() without its connect: the client's threads do the work
    return 0


SOCKET_RETRY_CAP_SECONDS = 60.0
SOCKET_PING_SECONDS = 3.0


def _open_socket(connect: Callable[[], Any]) -> None:
    """Open the Socket Mode connection, retrying with backoff (1 s doubling to a minute, jittered) while Slack cannot
    be reached or answers 429/5xx; one line per try on stderr. Raises OpsError when Slack refuses the app token."""
    from slack_sdk.errors import SlackApiError
    from tenacity import Retrying, retry_if_exception, wait_exponential_jitter

    def transient(exc: BaseException) -> bool:
        if isinstance(exc, SlackApiError):
            status = getattr(exc.response, "status_code", 200)
            return status == 429 or status >= 500 or exc.response.get("error") in ("ratelimited", "service_unavailable")
        return isinstance(exc, OSError)  # URLError, refused, reset, timeouts

    def say(state: Any) -> None:
        exc = state.outcome.exception()
        reason = getattr(exc, "reason", None) or exc
        print(
            f"opsbot: Slack could not be reached to open a Socket Mode connection ({reason}); "
            f"retrying in {state.next_action.sleep:.0f} s",
            file=sys.stderr,
            flush=True,
        )

    sdk_log = logging.getLogger("slack_sdk.web.base_client")  # its own lines per failed try would bury ours
    level = sdk_log.level
    sdk_log.setLevel(logging.CRITICAL)
    try:
        for attempt in Retrying(
            retry=retry_if_exception(transient),
            wait=wait_exponential_jitter(initial=1, max=SOCKET_RETRY_CAP_SECONDS),
            before_sleep=say,
            reraise=True,
        ):
            with attempt:
                connect()
    except SlackApiError as exc:
        raise OpsError(
            f"Slack refused to open a Socket Mode connection: {exc.response.get('error')} (check SLACK_APP_TOKEN)"
        ) from None
    finally:
        sdk_log.setLevel(level)


def cmd_worker(args: argparse.Namespace) -> int:
    from bot.settings import MissingSetting
    from bot.worker import run_worker

    settings = _settings()
    settings.require("SLACK_BOT_TOKEN", "jobs post to Slack with it")
    if not settings.redis_url:
        raise MissingSetting("REDIS_URL", "the worker takes its jobs from the shared Redis")
    config = _config(settings)
    _ready_database(settings, migrate=False)
    _setup_logging(settings)
    run_worker(settings, config, burst=args.burst)
    return 0


def console_settings() -> Settings:
    """The environment's settings, with the console's defaults where nothing is set."""
    settings = _settings()
    if "OPSBOT_CONFIG" not in os.environ and not Path(settings.opsbot_config).exists():
        for candidate in (Path(EXAMPLE_CONFIG), Path(__file__).resolve().parent.parent / EXAMPLE_CONFIG):
            if candidate.exists():
                settings = settings.model_copy(update={"opsbot_config": candidate})
                break
    return settings


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Start up with Python's cyclic garbage collector paused, then freeze what start-up built out of its later passes.

    Start-up builds a few hundred thousand objects that live as long as the process (modules, classes, pydantic's
    validators, the wiring) and almost no garbage; the collector's passes over them while they were being built took
    about a fifth of `opsbot console`'s start-up (bench/console_startup.py). ``gc.freeze()`` keeps later collections
    from walking them again; the collector is running again (if it was) when the block ends, however it ends.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def cmd_console(args: argparse.Namespace) -> int:
    with _collector_paused():
        from bot.adapters.local_jobs import InProcessJobs
        from bot.console.demo_services import with_demo_services
        from bot.console.shell import ConsoleSession, run, split_script
        from bot.domain.shared.ports import SystemClock
        from bot.wiring import build_services

        settings = console_settings()
        config, demo = with_demo_services(_config(settings))  # opsbot-demo.invalid URLs → a loopback demo server
        _ready_database(settings, migrate=True)
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
        # Jobs run on the console's own threads even with REDIS_URL set: a worker elsewhere could not reach the
        # console's local Slack, and without one, a queued deploy would wait forever holding its lock.
        session = ConsoleSession(
            settings,
            lambda s: build_services(s, config=config, allow_embedded_redis=True, jobs=InProcessJobs(SystemClock())),
            user=args.user,
        )
    try:
        lines = split_script(args.command) if args.command else None
        return run(session, lines, interactive=lines is None and sys.stdin.isatty())
    finally:
        session.close()
        if demo is not None:
            demo.stop()


def cmd_db(args: argparse.Namespace) -> int:
    from bot.adapters.sql.engine import upgrade

    settings = _settings()
    with _database_problems(settings.database_url):
        upgrade(settings.database_url)
    print(f"database schema is up to date ({_safe_url(settings.database_url)})")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    from bot.config import ConfigError, load_config

    settings = _settings()
    path = Path(args.config) if args.config else Path(settings.opsbot_config)
    config = load_config(path)
    if not args.skip_environment:
        unset = [
            f"{where}: {variable} is not set in this environment"
            for where, variable in config.secret_variables()
            if not os.environ.get(variable)
        ]
        if unset:  # a deploy would fail at run time, after its approvals; say it now
            raise ConfigError(str(path), [*unset, "(run where opsbot runs, or pass --skip-environment to check the file alone)"])
    checked = _check_metric_queries(config, str(path))
    print(f"{path}: ok ({len(config.services)} services, {len(config.environments)} environments)")
    if checked:
        print(checked)
    return 0


def _check_metric_queries(config: OpsConfig, source: str) -> str | None:
    """Every guardrail query through Prometheus' own parser (its API when reachable, else promtool); raises ConfigError
    naming each query that does not parse. What was checked and how, or None when there are no guardrails."""
    from bot.adapters.prometheus import PrometheusReader, promtool_check
    from bot.config import ConfigError
    from bot.domain.shared.metrics import MetricUnreadable

    queries = {
        f"services.{name}.environments.{env}.metrics[{i}].query": guardrail.promql(name, env)
        for name, service in config.services.items()
        for env, target in service.environments.items()
        for i, guardrail in enumerate(target.metrics)
    }
    if not queries or config.prometheus is None:
        return None
    reader = PrometheusReader(config.prometheus)
    try:
        problems = {where: error for where, query in queries.items() if (error := reader.check_query(query)) is not None}
        how = f"Prometheus at {config.prometheus.url}"
    except MetricUnreadable as exc:
        found = promtool_check(queries)
        if found is None:
            return (
                f"metrics: the {plural(len(queries), 'guardrail query', 'guardrail queries')} could not be checked: "
                f"{exc.reason}, and promtool is not installed"
            )
        problems, how = found, f"promtool (Prometheus: {exc.reason})"
    finally:
        reader.close()
    if problems:
        raise ConfigError(source, [f"{where}: not valid PromQL: {error}" for where, error in problems.items()])
    return f"metrics: {plural(len(queries), 'guardrail query', 'guardrail queries')} parsed by {how}"


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from bot.adapters.sql.audit import SqlAuditLog
    from bot.adapters.sql.engine import create_db_engine
    from bot.domain.shared.ports import SystemClock

    settings = _settings()
    anchor = _anchor(args.anchor) if args.anchor else None
    _ready_database(settings, migrate=False)
    result = SqlAuditLog(create_db_engine(settings.database_url), SystemClock()).verify(anchor)
    if result.ok:
        reaches = f"; it reaches the published head (row {anchor[0]})" if anchor else ""
        print(f"audit chain intact: {result.rows} rows, head {result.head_hash}{reaches}")
        return 0
    print(f"audit chain BROKEN at row {result.first_bad_seq}: {result.reason} ({result.rows} rows verified before it)")
    return 1


def _anchor(text: str) -> tuple[int, str]:
    """``<row>:<hash>`` as posted by `opsbot audit anchor` → (row, hash). Raises UsageProblem."""
    seq, _, digest = text.strip().partition(":")
    digest = digest.strip().strip("`").lower()
    if not seq.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise UsageProblem(
            f"--anchor: give <row>:<sha256 hash> as the audit channel shows it, like 120:9f86d0…; got `{text[:80]}`"
        )
    return int(seq), digest


def cmd_audit_anchor(args: argparse.Namespace) -> int:
    from bot.domain.shared.policy import Actor
    from bot.wiring import build_services

    settings = _settings()
    settings.require("SLACK_BOT_TOKEN", "the anchor is posted to Slack with it")
    config = _config(settings)
    if config.channels.audit is None:
        raise UsageProblem("no audit channel is configured: set channels.audit to a channel ID (C…) in the ops config")
    _ready_database(settings, migrate=False)
    runtime = build_services(settings, config=config, allow_embedded_redis=True)
    anchor = runtime.families.audit_anchors.publish(Actor(user_id=_operator(), source="cli"))
    assert anchor is not None
    posted = runtime.outbox.message(f"audit-anchor:{anchor.seq}")
    where = "posted to" if posted else "waiting in the outbox for"
    print(f"audit chain head row {anchor.seq}, sha256 {anchor.hash}: {where} <#{config.channels.audit}>")
    return 0


def cmd_audit_export(args: argparse.Namespace) -> int:
    from bot.adapters.sql.audit import EXPORT_FIELDS, SqlAuditLog, export_row
    from bot.adapters.sql.engine import create_db_engine
    from bot.config.durations import parse_duration
    from bot.domain.shared.ports import SystemClock

    clock = SystemClock()
    try:
        since = clock.now() - parse_duration(args.since) if args.since else None
    except ValueError as exc:
        raise UsageProblem(f"--since: {exc}") from None
    settings = _settings()
    _ready_database(settings, migrate=False)
    store = SqlAuditLog(create_db_engine(settings.database_url), clock)
    writer = csv.DictWriter(sys.stdout, fieldnames=EXPORT_FIELDS) if args.format == "csv" else None
    if writer:
        writer.writeheader()
    for row in store.rows():
        if since and row["at"].replace(tzinfo=since.tzinfo) < since:
            continue
        record = export_row(row)
        if writer:
            writer.writerow(record)
        else:
            print(json.dumps(record, ensure_ascii=False))
    return 0


def _outbox() -> tuple[Any, Any]:
    from bot.adapters.sql.audit import SqlAuditLog
    from bot.adapters.sql.engine import create_db_engine
    from bot.adapters.sql.outbox import OutboxTable
    from bot.domain.shared.ports import SystemClock

    settings = _settings()
    _ready_database(settings, migrate=False)
    engine, clock = create_db_engine(settings.database_url), SystemClock()
    return OutboxTable(engine, clock), SqlAuditLog(engine, clock)


def _operator() -> str:
    """Who ran the command, for the audit log: the login name of this shell."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"[:32]
    except (KeyError, OSError):
        return "cli:unknown"


def cmd_outbox_list(args: argparse.Namespace) -> int:
    from bot.adapters.sql.outbox import DELIVERED, DROPPED, FAILED, PENDING, SUPERSEDED

    table, _ = _outbox()
    states = (PENDING, FAILED, DELIVERED, DROPPED, SUPERSEDED) if args.all else (PENDING, FAILED)
    effects = table.listing(states, limit=args.limit)
    if not effects:
        print("the outbox is empty: every effect was delivered" if not args.all else "the outbox is empty")
        return 0
    print(f"{'id':>6}  {'state':<10} {'kind':<13} {'tries':>5}  {'next try / done (UTC)':<20} origin · key · last error")
    for e in effects:
        when = e.delivered_at if e.state != PENDING else e.next_attempt_at
        error = f" · {e.last_error[:160]}" if e.last_error else ""
        print(f"{e.id:>6}  {e.state:<10} {e.kind:<13} {e.attempts:>5}  {when:%Y-%m-%d %H:%M:%S}  {e.origin} · {e.key}{error}")
    return 0


def _operate(args: argparse.Namespace, action: str) -> int:
    from bot.domain.shared.ports import AuditEntry

    table, audit = _outbox()
    effect = table.get(args.id)
    if effect is None:
        print(f"opsbot: there is no effect {args.id} in the outbox", file=sys.stderr)
        return 1
    done = table.requeue(args.id) if action == "retry" else table.drop(args.id)
    audit.record(
        AuditEntry(
            actor=_operator(),
            action=f"outbox.{action}",
            outcome="ok" if done else "conflict",
            target=effect.origin[:200],
            params={"effect": effect.id, "kind": effect.kind, "key": effect.key, "was": effect.state, "reason": args.reason},
            source="cli",
        )
    )
    if not done:
        print(
            f"opsbot: effect {effect.id} is {effect.state}; only pending or failed effects can be {PAST[action]}", file=sys.stderr
        )
        return 1
    if action == "retry":
        print(f"effect {effect.id} ({effect.kind}, {effect.origin}) is pending again; `opsbot worker` delivers it within seconds")
    else:
        print(f"effect {effect.id} ({effect.kind}, {effect.origin}) was dropped: it will never be delivered")
    return 0


def cmd_outbox_retry(args: argparse.Namespace) -> int:
    return _operate(args, "retry")


def cmd_outbox_drop(args: argparse.Namespace) -> int:
    return _operate(args, "drop")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="opsbot", description="ChatOps for runbooks, from Slack or a local console.")
    sub = root.add_subparsers(dest="command_name", required=True)

    serve = sub.add_parser(
        "serve",
        help="HTTP mode (gunicorn): POST /slack/events, GET /healthz, /readyz, /metrics, /status, /status.json "
        "(when status_page is enabled), POST /alertmanager",
    )
    serve.add_argument("--port", type=int, help="listen port (default: $PORT or 3000)")
    serve.add_argument("--embedded-redis", action="store_true", help="use an in-process Redis (one process only)")
    serve.set_defaults(func=cmd_serve)

    socket = sub.add_parser("socket", help="Socket Mode (needs SLACK_APP_TOKEN)")
    socket.add_argument("--embedded-redis", action="store_true", help="use an in-process Redis (one process only)")
    socket.set_defaults(func=cmd_socket)

    worker = sub.add_parser("worker", help="run background jobs (deploys, expiries, reminders) from the shared Redis")
    worker.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    worker.set_defaults(func=cmd_worker)

    console = sub.add_parser("console", help="the bot in your terminal: no Slack, Redis or database server needed")
    console.add_argument("-c", "--command", action="append", help="run this line (repeatable) and exit")
    console.add_argument("--user", default="U0DEPLOYER", help="act as this user ID at start")
    console.set_defaults(func=cmd_console)

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply every migration").set_defaults(func=cmd_db)

    check = sub.add_parser("check-config", help="validate the ops config; exit 1 on errors")
    check.add_argument("config", nargs="?", help="path (default: $OPSBOT_CONFIG or ./opsbot.yml)")
    check.add_argument(
        "--skip-environment", action="store_true", help="do not check that the secrets the config names by variable are set"
    )
    check.set_defaults(func=cmd_check_config)

    audit = sub.add_parser("audit", help="the tamper-evident audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="check the hash chain; name the first broken row")
    verify.add_argument(
        "--anchor", metavar="ROW:HASH", help="a head published to the audit channel: the chain must still reach it"
    )
    verify.set_defaults(func=cmd_audit_verify)
    audit_sub.add_parser(
        "anchor", help="publish the chain's head (row and hash) to channels.audit, outside the database"
    ).set_defaults(func=cmd_audit_anchor)
    export = audit_sub.add_parser("export", help="write every entry to stdout")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    export.add_argument("--since", help="only entries newer than this (e.g. 24h, 7d)")
    export.set_defaults(func=cmd_audit_export)

    outbox = sub.add_parser("outbox", help="effects waiting for delivery (Slack posts, jobs): list, retry, drop")
    outbox_sub = outbox.add_subparsers(dest="outbox_command", required=True)
    listing = outbox_sub.add_parser("list", help="pending and failed effects, newest first")
    listing.add_argument("--all", action="store_true", help="also delivered, superseded and dropped ones")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(func=cmd_outbox_list)
    retry = outbox_sub.add_parser("retry", help="put a failed effect back for delivery, with a fresh deadline")
    retry.add_argument("id", type=int)
    retry.add_argument("--reason", help="why, for the audit log")
    retry.set_defaults(func=cmd_outbox_retry)
    drop = outbox_sub.add_parser("drop", help="give up on a pending or failed effect for good")
    drop.add_argument("id", type=int)
    drop.add_argument("--reason", required=True, help="why, for the audit log")
    drop.set_defaults(func=cmd_outbox_drop)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    func: Callable[[Any], int] = args.func
    try:
        return func(args)
    except UsageProblem as exc:
        print(f"opsbot: {exc}", file=sys.stderr)
        return 2
    except NotMigrated as exc:
        print(f"opsbot: {exc}", file=sys.stderr)
        return 2
    except OpsError as exc:
        print(f"opsbot: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `opsbot audit export | head`: the reader has what it wanted (Python's documented recipe)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:  # the settings' and the config's errors, whose modules the command itself loaded
        from bot.config import ConfigError
        from bot.settings import MissingSetting

        if isinstance(exc, MissingSetting):
            print(f"opsbot: {exc}", file=sys.stderr)
            return 2
        if isinstance(exc, ConfigError):
            found = [error for error in exc.errors if not error.startswith("(run ")]  # "(run where opsbot runs …)" is a hint
            print(f"opsbot: the ops config {exc.source} has {plural(len(found), 'error')}:", file=sys.stderr)
            for error in exc.errors:
                print(f"  {error}", file=sys.stderr)
            return 1
        raise


class UsageProblem(Exception):
    """A command-line argument that cannot be read; the CLI prints one line and exits 2."""


class NotMigrated(Exception):
    """The database cannot be used as it is (its schema is behind or ahead of this opsbot, or it cannot be reached);
    the CLI says why on one line and exits 2."""


if __name__ == "__main__":
    sys.exit(main())
