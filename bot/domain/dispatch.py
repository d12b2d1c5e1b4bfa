"""The one entry point for every transport: parse, authorize, run, audit, and turn errors into replies."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
import secrets
from collections.abc import Callable
from enum import Enum
from typing import Any

from bot.domain.shared.commands import Subcommand, match, split_args, tokenize
from bot.domain.shared.context import Call, Services
from bot.domain.shared.errors import OpsError, Unavailable, UsageError
from bot.domain.shared.messages import ErrorNotice, HelpEntry, HelpMessage, Notice, SubcommandHelp
from bot.domain.shared.policy import Actor, Role
from bot.domain.shared.ports import AuditEntry, Reply

log = logging.getLogger("opsbot.dispatch")


def audit_params(command: Any) -> dict[str, Any]:
    """A typed command as JSON-safe audit parameters."""
    if dataclasses.is_dataclass(command) and not isinstance(command, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(command).items()}
    return {}


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


@dataclass(frozen=True)
class JobSpec:
    """A background job a family registers: ``run(call, payload)``; ``audited`` jobs leave an audit row."""

    name: str
    run: Callable[[Call, dict[str, Any]], None]
    audited: bool = True


JOB_ACTOR = Actor(user_id="opsbot", source="job")


class Dispatcher:
    """Runs `/ops` text, button clicks and background jobs, with the same checks, errors and audit."""

    def __init__(self, services: Services, subcommands: list[Subcommand[Any]], jobs: list[JobSpec] | None = None) -> None:
        self.services = services
        self.jobs = {job.name: job for job in jobs or []}
        help_spec: Subcommand[Any] = Subcommand(
            words=("help",),
            summary="What you may run here, or how to use one subcommand",
            usage="help [subcommand]",
            role=Role.VIEWER,
            parse=lambda args: " ".join(args.positional).lower(),
            run=self._help,
        )
        self.subcommands = [help_spec, *subcommands]

    def run_text(self, text: str, actor: Actor) -> Reply:
        """Run one line of `/ops` text as ``actor``."""
        call = Call(actor, self.services)

        def parse_and_run() -> Reply:
            tokens = tokenize(text)
            spec, rest = match(self.subcommands, tokens or ["help"])
            state["spec"] = spec
            self.services.policy.require(actor, spec.role, spec.name)
            command = spec.parse(split_args(spec, rest))
            state["command"] = command
            if spec.mutates:
                # No change without a trace: if the audit log cannot take the intent, refuse.
                action, params = describe()
                self._audit(call, action, params, "started", None, "", strict=True)
            return spec.run(command, call)

        state: dict[str, Any] = {}

        def describe() -> tuple[str, dict[str, Any]]:
            spec = state.get("spec")
            action = "command." + ("_".join(spec.words) if spec else "unknown")
            params = audit_params(state["command"]) if "command" in state else {"text": text[:500]}
            return action, params

        return self._guarded(call, parse_and_run, describe, usage=lambda: state["spec"].usage_line() if "spec" in state else None)

    def perform(
        self,
        actor: Actor,
        action: str,
        fn: Callable[[Call], Reply],
        *,
        params: dict[str, Any] | None = None,
        target: str = "",
    ) -> Reply:
        """Run a non-text action (a button click, a modal, a job) with the same error handling and audit."""
        call = Call(actor, self.services)
        return self._guarded(call, lambda: fn(call), lambda: (action, params or {}), target=target)

    def run_job(self, name: str, payload: dict[str, Any]) -> Reply:
        """Run the registered job ``name``; failures are logged and audited, never raised."""
        call = Call(JOB_ACTOR, self.services)
        job = self.jobs.get(name)

        def body() -> Reply:
            if job is None:
                raise OpsError(f"no job named {name!r} is registered")
            job.run(call, payload)
            return Reply(Notice(f"job {name} done"))

        if job is not None and not job.audited:
            try:
                return body()
            except Exception:
                log.exception("job %s failed", name)
                return Reply(ErrorNotice("error", f"job {name} failed"), outcome="error")
        return self._guarded(call, body, lambda: (f"job.{name}", {k: _plain(v) for k, v in payload.items()}))

    def _guarded(
        self,
        call: Call,
        body: Callable[[], Reply],
        describe: Callable[[], tuple[str, dict[str, Any]]],
        *,
        usage: Callable[[], str | None] = lambda: None,
        target: str = "",
    ) -> Reply:
        error: str | None = None
        try:
            reply = body()
            outcome = reply.outcome
        except UsageError as exc:
            outcome, error = exc.outcome, exc.message
            reply = Reply(ErrorNotice("usage", exc.message, exc.usage or usage()), outcome=outcome)
        except OpsError as exc:
            outcome, error = exc.outcome, exc.message
            reply = Reply(ErrorNotice(exc.outcome, exc.message), outcome=outcome)
        except Exception as exc:  # the user gets a reference, the log gets the traceback
            reference = secrets.token_hex(4)
            log.exception("unexpected error (ref %s)", reference)
            outcome, error = "error", f"{type(exc).__name__} (ref {reference})"
            reply = Reply(ErrorNotice("error", "Something went wrong on our side; it has been logged.", reference=reference), outcome=outcome)
        action, params = describe()
        self._audit(call, action, params, outcome, error, target)
        return reply

    def _audit(
        self, call: Call, action: str, params: dict[str, Any], outcome: str, error: str | None, target: str, strict: bool = False
    ) -> None:
        actor = call.actor
        service = params.get("service") if isinstance(params.get("service"), str) else None
        environment = params.get("environment") if isinstance(params.get("environment"), str) else None
        if not target and service:
            target = f"{service}/{environment}" if environment else service
        entry = AuditEntry(
            actor=actor.user_id,
            action=action,
            outcome=outcome,
            target=target,
            params=params,
            error=error,
            channel=actor.channel_id,
            request_id=actor.request_id,
            source=actor.source,
            service=service,
            environment=environment,
        )
        if strict:
            self.services.audit.record(entry)
            return
        try:
            self.services.audit.record(entry)
        except Unavailable as exc:
            # The action already happened: keep a copy where operators will find it.
            log.error("audit log unavailable (%s); entry: %s", exc.detail or exc.what, entry)

    def _help(self, topic: str, call: Call) -> Reply:
        policy, actor = call.services.policy, call.actor
        if topic:
            try:
                spec, _ = match(self.subcommands, topic.split())
            except UsageError as exc:
                raise UsageError(exc.message.replace("subcommand", "help topic")) from None
            entry = HelpEntry(spec.usage_line(), spec.summary, spec.role.value)
            return Reply(SubcommandHelp(entry, policy.has(actor.user_id, spec.role)))
        allowed = [s for s in self.subcommands if policy.has(actor.user_id, s.role)]
        entries = [HelpEntry(s.usage_line(), s.summary, s.role.value) for s in allowed]
        roles = sorted(r.value for r in policy.roles_of(actor.user_id))
        return Reply(HelpMessage(entries, roles, hidden=len(self.subcommands) - len(allowed)))

