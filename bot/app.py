"""The Bolt app: one per call, wired to the given runtime; HTTP, Socket Mode and the console share it."""

from __future__ import annotations

import logging
import os
import secrets
import sys
import threading
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse

from bot.settings import Settings
from bot.wiring import Runtime
from handlers.common import SharedOperations

log = logging.getLogger("opsbot.app")


class _NoTokenNotice(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment even when it is given a client (ours, which carries the
    token), then warns at every start that the token "will be unused": true and useless, so it is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


def create_app(
    settings: Settings,
    runtime: Runtime,
    *,
    executor: Executor | None = None,
    mode: str = "http",
    verify_requests: bool = True,
) -> App:
    """A fresh Bolt app whose listeners reach ``runtime`` (as ``handlers.common.Operations``) through the request context.

    In HTTP mode every request must carry Slack's signature; Socket Mode needs no signing secret. ``verify_requests``
    False: an app that only runs lazy listeners handed over by one that checked them (``bot.work_processes``).
    """
    import handlers

    verify = mode == "http" and verify_requests
    secret = settings.require("SLACK_SIGNING_SECRET", "Slack signs every request with it") if verify else ""
    app = App(
        # The name Bolt gives an app by default (its caller's file name, which its listeners' loggers are named after),
        # given here: Bolt finds it with inspect.stack(), which looks up the module and source of every calling frame
        # (about 45 ms for the first app in `opsbot console`, a third of its run).
        name="app.py",
        signing_secret=secret,
        request_verification_enabled=verify,
        client=runtime.web_client,
        token_verification_enabled=False,
        # Listeners ack on the request thread and hand their work to Bolt's pool as lazy functions:
        # an ack never queues behind other requests' work, however busy the pool is.
        process_before_response=True,
        listener_executor=executor,
        logger=_bolt_logger(),
    )

    shared = SharedOperations(runtime)

    @app.middleware
    def provide_operations(request: BoltRequest, context: Any, next: Any) -> Any:
        context["ops"] = shared
        if request.lazy_only:  # a lazy listener run apart from its ack (bot.work_processes): nothing is acked here
            return next()
        # Listeners ack on this thread and leave their work to the pool: when next() returns, Slack has its answer.
        started = time.perf_counter()
        try:
            return next()
        finally:
            runtime.metrics.ack_seconds.observe(time.perf_counter() - started)

    @app.middleware
    def once_per_event(request: BoltRequest, body: dict[str, Any], next: Any) -> Any:
        if request.lazy_only:  # its ack, in another process, took the delivery
            return next()
        # Slack delivers an event again when its ack did not arrive in time (HTTP: X-Slack-Retry-Num; Socket Mode:
        # retry_attempt), with the same event_id: the first delivery taken is the one handled.
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if isinstance(event_id, str) and not _first_delivery(runtime, settings.opsbot_redis_prefix, event_id):
            log.info("event %s was delivered again; it is handled already", event_id)
            return BoltResponse(status=200, body="")
        return next()

    @app.error
    def on_error(error: Exception, body: dict[str, Any], respond: Any) -> BoltResponse:
        # Last resort for anything a handler did not turn into a reply: never a traceback in Slack.
        reference = secrets.token_hex(4)
        log.error("unhandled error (ref %s) for %s", reference, body.get("type") or body.get("command"), exc_info=error)
        if respond is not None:
            try:
                respond(
                    text=f"💥 Something went wrong on our side; it has been logged (ref `{reference}`).",
                    response_type="ephemeral",
                )
            except Exception:  # the response_url may be gone too; the log has the details
                log.warning("could not tell the user about ref %s", reference)
        return BoltResponse(status=200, body="")

    handlers.register_all(app)
    return app


LISTENER_THREADS = 5  # as Bolt's own pool (slack_bolt.App: ThreadPoolExecutor(max_workers=5))


def listener_pool(nice: int) -> ThreadPoolExecutor:
    """Bolt's pool for lazy listeners (the commands' work), whose threads run ``nice`` steps below the process.

    The threads that ack stay at the process's priority: when the CPU is short, the scheduler runs them first, and an
    ack does not queue behind the commands it hands over (bench/ack_latency.py). Raising a thread's niceness needs no
    privilege; where the system cannot do it per thread (it is Linux's), the pool runs at the process's priority.
    """

    def lower_priority() -> None:
        if nice > 0 and sys.platform.startswith("linux"):
            try:
                thread = threading.get_native_id()  # on Linux, a thread's id names the thread alone
                os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + nice))
            except OSError as exc:
                log.warning("could not lower the listener threads' priority: %s", exc)

    return ThreadPoolExecutor(max_workers=LISTENER_THREADS, thread_name_prefix="listener", initializer=lower_priority)


EVENT_SEEN_SECONDS = 3600  # Slack retries an event three times within about an hour (Events API, "Retries")


def _first_delivery(runtime: Runtime, prefix: str, event_id: str) -> bool:
    """Claim ``event_id``; False when an earlier delivery claimed it. Redis unreachable: True (handling an event twice
    beats losing it)."""
    try:
        return bool(runtime.redis.set(f"{prefix}slack-event:{event_id[:100]}", "1", nx=True, ex=EVENT_SEEN_SECONDS))
    except Exception as exc:  # redis-py raises its ConnectionError/TimeoutError; any failure means "cannot tell"
        log.warning("could not record event %s (%s); handling it", event_id, type(exc).__name__)
        return True


def _bolt_logger() -> logging.Logger:
    logger = logging.getLogger("opsbot.bolt")
    if not any(isinstance(f, _NoTokenNotice) for f in logger.filters):
        logger.addFilter(_NoTokenNotice())
    return logger
