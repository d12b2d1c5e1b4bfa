"""The one entry point for every transport: parse, authorize, run, audit, and turn errors into replies."""

from __future__ import annotations

import dataclasses
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any, Protocol

from bot.domain.shared.commands import DRY_RUN, Subcommand, match, split_args, tokenize
from bot.domain.shared.errors import NotPermitted, OpsError, Unavailable, UsageError
from bot.domain.shared.family import JOB_ACTOR, Family, JobSpec
from bot.domain.shared.messages import DryRunReport, ErrorNotice, HelpEntry, HelpMessage, Notice, SubcommandHelp
from bot.domain.shared.policy import Actor, Policy, Role
from bot.domain.shared.ports import AuditEntry, AuditLog, PeopleDirectory, Reply

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


class RequestObserver(Protocol):
    """Told about every request the dispatcher ran: metrics and the request log live behind it, at the edge."""

    def finished(self, actor: Actor, action: str, outcome: str, seconds: float) -> None:
        """``action`` (``command.deploy``, ``click.approve`` …) run by ``actor`` ended with ``outcome`` after ``seconds``."""
        ...


class Dispatcher:
    """Runs `/ops` text, button clicks and background jobs, with the same checks, errors and audit."""

    def __init__(
        self, *, audit: AuditLog, policy: Policy, families: Sequence[Family], people: PeopleDirectory, observer: RequestObserver
    ) -> None:
        self._audit_log = audit
        self._observer = observer
        self._people = people
        self.policy = policy
        self.families = list(families)
        self.jobs: dict[str, JobSpec] = {job.name: job for family in families for job in family.jobs}
        subcommands = [spec for family in families for spec in family.commands]
        help_spec: Subcommand[Any] = Subcommand(
            words=("help",),
            summary="What you may run here, or how to use one subcommand",
            usage="help [subcommand]",
            role=Role.VIEWER,
            parse=lambda args: " ".join(args.positional).lower(),
            run=self._help,
        )
        self.subcommands = [help_spec, *subcommands]

    def reconcile(self) -> list[str]:
        """One reconciler round: every family's repair steps, each guarded (one failing step does not stop the others);
        what was repaired, in words. Each step audits its own repairs."""
        repaired: list[str] = []
        for family in self.families:
            for step in family.reconcile:
                try:
                    repaired.extend(step(JOB_ACTOR))
                except OpsError as exc:
                    log.warning("reconciler step of %s could not run: %s", family.name, exc.message)
                except Exception:
                    log.exception("reconciler step of %s failed", family.name)
        return repaired

    def startup_jobs(self) -> list[str]:
        """Jobs every `opsbot worker` submits when it starts (e.g. starting the health watches)."""
        return [name for family in self.families for name in family.startup_jobs]

    def run_text(self, text: str, actor: Actor) -> Reply:
        """Run one line of `/ops` text as ``actor``."""

        def parse_and_run() -> Reply:
            tokens = tokenize(text)
            spec, rest = match(self.subcommands, tokens or ["help"])
            state["spec"] = spec
            self.policy.require_somewhere(actor, spec.role, spec.name)
            args = split_args(spec, rest, self._people)
            try:
                command = spec.parse(args)
            except UsageError as exc:  # the parser's usage line is the bare one: add what the dispatcher accepts too
                own = f"/ops {' '.join(spec.words)}"
                if spec.preview is not None and exc.usage and exc.usage.startswith(own) and f"--{DRY_RUN}" not in exc.usage:
                    exc.usage = f"{exc.usage} [--{DRY_RUN}]"
                raise
            state["command"] = command
            if spec.preview is not None and DRY_RUN in args.flags:
                return self._preview(spec, command, actor)
            if spec.mutates:
                # No change without a trace: if the audit log cannot take the intent, refuse.
                action, params = describe()
                self._audit(actor, action, params, "started", None, "", strict=True)
            return spec.run(command, actor)

        state: dict[str, Any] = {}

        def describe() -> tuple[str, dict[str, Any]]:
            spec = state.get("spec")
            action = "command." + ("_".join(spec.words) if spec else "unknown")
            params = audit_params(state["command"]) if "command" in state else {"text": text[:500]}
            return action, params

        return self._guarded(
            actor, parse_and_run, describe, usage=lambda: state["spec"].usage_line() if "spec" in state else None
        )

    @staticmethod
    def _preview(spec: Subcommand[Any], command: Any, actor: Actor) -> Reply:
        """``--dry-run``: the subcommand's preview, audited once as ``dry_run`` (no "started" row: nothing starts). A
        refusal the command would meet now (a held lock, an unknown flag …) is part of the answer, not an error; a
        usage error, a missing role and an unreachable store stay what they are."""
        assert spec.preview is not None
        try:
            reply = spec.preview(command, actor)
        except (UsageError, NotPermitted, Unavailable):
            raise  # the command itself is wrong, or the answer cannot be known now: said as for the real thing
        except OpsError as exc:
            return Reply(DryRunReport(spec.name, [], refused=exc.message), outcome="dry_run")
        return dataclasses.replace(reply, visibility="ephemeral", outcome="dry_run")

    def perform(
        self,
        actor: Actor,
        action: str,
        fn: Callable[..., Reply],
        *args: Any,
        params: dict[str, Any] | None = None,
        target: str = "",
    ) -> Reply:
        """``fn(actor, *args)`` for a non-text action (a button click, a modal, an event), with the same errors and audit."""
        return self._guarded(actor, lambda: fn(actor, *args), lambda: (action, params or {}), target=target)

    def run_job(self, name: str, payload: dict[str, Any]) -> Reply:
        """Run the declared job ``name``; failures are logged and audited, never raised."""
        job = self.jobs.get(name)

        def body() -> Reply:
            if job is None:
                raise OpsError(f"no job named {name!r} is registered")
            job.run(JOB_ACTOR, payload)
            return Reply(Notice(f"job {name} done"))

        if job is not None and not job.audited:
            try:
                return body()
            except Exception:
                log.exception("job %s failed", name)
                return Reply(ErrorNotice("error", f"job {name} failed"), outcome="error")
        return self._guarded(JOB_ACTOR, body, lambda: (f"job.{name}", {k: _plain(v) for k, v in payload.items()}))

    def _guarded(
        self,
        actor: Actor,
        body: Callable[[], Reply],
        describe: Callable[[], tuple[str, dict[str, Any]]],
        *,
        usage: Callable[[], str | None] = lambda: None,
        target: str = "",
    ) -> Reply:
        error: str | None = None
        started = time.perf_counter()
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
            reply = Reply(
                ErrorNotice("error", "Something went wrong on our side; it has been logged.", reference=reference),
                outcome=outcome,
            )
        action, params = describe()
        self._audit(actor, action, params, outcome, error, target)
        try:
            self._observer.finished(actor, action, outcome, time.perf_counter() - started)
        except Exception:  # counting and logging never change what the user gets
            log.exception("request observer failed")
        return reply

    def _audit(
        self,
        actor: Actor,
        action: str,
        params: dict[str, Any],
        outcome: str,
        error: str | None,
        target: str,
        strict: bool = False,
    ) -> None:
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
            self._audit_log.record(entry)
            return
        try:
            self._audit_log.record(entry)
        except Unavailable as exc:
            # The action already happened: keep a copy where operators will find it.
            log.error("audit log unavailable (%s); entry: %s", exc.detail or exc.what, entry)

    def _help(self, topic: str, actor: Actor) -> Reply:
        policy = self.policy
        words = tuple(topic.split())
        group = [s for s in self.subcommands if len(s.words) > len(words) and s.words[: len(words)] == words]
        if words and group and not any(s.words == words for s in self.subcommands):  # `help incident`: the group's list
            held, unreadable = policy.readable_roles_of(actor.user_id)
            entries = [HelpEntry(s.usage_line(), s.summary, s.role.value) for s in group if s.role in held]
            roles = sorted(r.value for r in held)
            return Reply(
                HelpMessage(entries, roles, len(group) - len(entries), unreadable, self._where(actor.user_id, unreadable))
            )
        if topic.split():
            try:
                spec, _ = match(self.subcommands, topic.split())
            except UsageError as exc:
                raise UsageError(exc.message.replace("subcommand", "help topic")) from None
            entry = HelpEntry(spec.usage_line(), spec.summary, spec.role.value)
            return Reply(SubcommandHelp(entry, policy.has_somewhere(actor.user_id, spec.role)))
        # A user group Slack will not show (deleted, a missing scope) must not take the whole answer down.
        held, unreadable = policy.readable_roles_of(actor.user_id)
        allowed = [s for s in self.subcommands if s.role in held]
        entries = [HelpEntry(s.usage_line(), s.summary, s.role.value) for s in allowed]
        roles = sorted(r.value for r in held)
        hidden = len(self.subcommands) - len(allowed)
        return Reply(HelpMessage(entries, roles, hidden, unreadable, self._where(actor.user_id, unreadable)))

    def _where(self, user_id: str, unreadable: list[str]) -> list[str]:
        """Where environments' own roles make ``user_id``'s standing differ from the global one, in words:
        "deployer: not in production", "approver: also in staging"."""
        notes = []
        for role in (Role.ADMIN, Role.APPROVER, Role.DEPLOYER):
            if not self.policy.environments:
                break
            globally = self.policy.has(user_id, role, unreadable=unreadable)
            held, not_held = self.policy.where(user_id, role, unreadable=unreadable)
            if globally and not_held:
                notes.append(f"{role.value}: not in {', '.join(not_held)}")
            if not globally and held:
                notes.append(f"{role.value}: only in {', '.join(held)}")
        return notes
