"""The job ``deploys.run``: announce, run the provider, verify, record the result under the lock's fence.

It runs on `opsbot worker` (or a thread in the console), never in the request Slack waits on.
The row's compare-and-set ``approved`` → ``running`` lets exactly one run through, however many times
the job is delivered; ``provider_started_at`` is written before the provider is called, so nothing ever
calls it twice for one deploy. A heartbeat renews the lock's TTL and writes ``heartbeat_at`` on the row
while the deploy runs; it stops the provider at once when the lock is lost, when someone cancels the
deploy, or when the worker is shutting down past its grace period (the reconciler then finishes it).
Each state change and its announcement are one unit of work; a database outage is ridden out
(``until_back``) rather than leaving the deploy ``running``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from bot.domain.deploys import support, verification
from bot.domain.deploys.deps import DeployDeps
from bot.domain.deploys.freeze_takeover import FreezeTakeover
from bot.domain.deploys.messages import DeployFailed, DeployStarted, DeployStopped, DeploySucceeded, LockLost, RolledBack
from bot.domain.deploys.model import Deploy, DeployOrder, DeployState, ProviderResult, StopSignal
from bot.domain.deploys.ports import DeployProvider
from bot.domain.deploys.rollbacks import Rollbacks
from bot.domain.incidents.freezes import Retake
from bot.domain.locks.ports import MAX_MANUAL_LOCK, Lease
from bot.domain.shared.errors import OpsError, Unavailable
from bot.domain.shared.policy import Actor
from bot.domain.shared.retry import until_back

log = logging.getLogger("opsbot.deploys")
RECORD_WITHIN_SECONDS = 30 * 60  # how long a run keeps trying to record its result while the database is away
HANDED_OVER = datetime(1970, 1, 1, tzinfo=UTC)  # a heartbeat this old tells the reconciler to take over at once


class Heartbeat:
    """Beats every ``durability.heartbeat_seconds`` on a thread while a deploy runs.

    Each beat renews the lock's TTL in Redis and writes ``heartbeat_at`` on the row; it stops the provider
    (``stop``) when the lock is lost (``lost``), when someone asked to cancel (``cancelled_by``), when the
    reconciler has already settled the deploy (``superseded``), or when the worker is shutting down and
    the grace period is over (``handed_over``). A Redis or database blip is only logged: the next beat tries again.
    """

    def __init__(self, d: DeployDeps, deploy: Deploy, lease: Lease | None, stop: StopSignal) -> None:
        self._d, self._deploy, self._lease, self.stop = d, deploy, lease, stop
        self._interval = min(d.config.durability.heartbeat_seconds, d.config.deploys.lock_ttl_seconds / 3)
        self._done = threading.Event()
        self.lost = self.superseded = self.handed_over = False
        self.cancelled_by: str | None = None
        self._shutdown_since: float | None = None
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{deploy.id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        elapsed = 0.0
        while not self._done.wait(min(self._interval, 0.5)):
            elapsed += min(self._interval, 0.5)
            self._check_shutdown()
            if elapsed >= self._interval:
                elapsed = 0.0
                self.beat()

    def beat(self) -> None:
        d, deploy = self._d, self._deploy
        if self._lease is not None:
            try:
                if not d.locks.extend(self._lease, d.config.deploys.lock_ttl_seconds):
                    self.lost = True
                    self.stop.stop("its deploy lock was broken or ran out")
            except OpsError as exc:  # Redis is away: the database still keeps this deploy's target to itself
                log.warning("heartbeat of %s: could not renew its lock (%s)", deploy.id, exc.message)
        try:
            with d.uow() as uow:
                row = uow.deploys.beat(deploy.id, d.clock.now())
                uow.commit()
        except OpsError as exc:
            log.warning("heartbeat of %s: could not record it (%s)", deploy.id, exc.message)
            return
        if row is None:
            self.superseded = True
            self.stop.stop("opsbot settled it after its heartbeat stopped")
        elif row.cancel_requested_by and self.cancelled_by is None:
            self.cancelled_by = row.cancel_requested_by
            self.stop.stop(f"cancelled by <@{row.cancel_requested_by}>")

    def _check_shutdown(self) -> None:
        if not self._d.shutdown.requested or self.handed_over:
            return
        now = time.monotonic()
        if self._shutdown_since is None:
            self._shutdown_since = now
            log.warning(
                "%s: the worker is shutting down; the deploy has %.0f s to finish",
                self._deploy.id,
                self._d.config.durability.shutdown_grace_seconds,
            )
        if now - self._shutdown_since >= self._d.config.durability.shutdown_grace_seconds:
            self.handed_over = True
            self.stop.stop("the worker shut down; opsbot's reconciler finishes the deploy", cancel_remote=False)


@dataclass(frozen=True)
class Ended:
    """How a run ended, as the outcome to record."""

    ok: bool
    result: ProviderResult
    verdict: verification.Verdict | None


class DeployRuns:
    """Running an approved deploy or rollback to its recorded, announced end."""

    def __init__(self, deps: DeployDeps, takeover: FreezeTakeover, rollbacks: Rollbacks | None = None) -> None:
        self._d = deps
        self._takeover = takeover
        self._rollbacks = rollbacks  # opens the rollback at once after a guardrail breach where auto_rollback is set

    def run(self, actor: Actor, payload: dict[str, Any]) -> None:
        d = self._d
        deploy_id = str(payload.get("deploy_id", ""))
        started = self._start(deploy_id)
        if started is None:
            return  # already run, or closed meanwhile: a repeated job does nothing
        if isinstance(started, Deploy):  # its lock went while it waited: nothing was started or announced
            self._lock_lost(actor, started, "before it started", None, was=DeployState.APPROVED)
            return
        deploy, provider, order, description = started
        support.publish(
            d, deploy, "rollback.started" if deploy.is_rollback else "deploy.started", support.event_summary(deploy, "started")
        )
        lease = deploy.lease
        stop = StopSignal()
        stop.on_process(lambda process: self._note(deploy.id, provider_process=process))
        stop.on_link(lambda url: self._linked(deploy, description, url))
        try:
            with Heartbeat(d, deploy, lease, stop) as beat:
                # Past this line the provider may have acted: nothing calls it again for this deploy. Fenced by this
                # run's start: a run the reconciler requeued or settled meanwhile (its worker was slow, not dead)
                # finds the deploy no longer its own and calls nothing.
                if not self._claim_provider(deploy):
                    support.audit(d, actor, "deploy.provider_call", deploy, "superseded", provider=description)
                    beat.superseded = True
                    return
                support.audit(d, actor, "deploy.provider_call", deploy, "started", provider=description)
                result = _call_provider(provider, order, stop)
                support.audit(
                    d,
                    actor,
                    "deploy.provider_result",
                    deploy,
                    "ok" if result.ok else "failed",
                    None if result.ok else result.summary,
                    summary=result.summary,
                )
                verdict = None
                if result.ok and not stop.stopped:
                    verdict = self._verify(deploy, stop)
                    support.audit(
                        d,
                        actor,
                        "deploy.verification",
                        deploy,
                        "ok" if verdict.ok else "failed",
                        None if verdict.ok else verdict.summary,
                        summary=verdict.summary,
                        checks=verdict.checks,
                        verified=verdict.verified,
                    )
        except Exception as exc:  # whatever broke, the deploy ends failed and its lock is released, never stuck
            log.exception("deploy %s broke", deploy.id)
            self._finish(
                actor, deploy, Ended(False, ProviderResult(False, f"opsbot failed while running it ({type(exc).__name__})"), None)
            )
            return
        if beat.superseded:
            return  # the reconciler decided and announced it
        if beat.handed_over:
            self._hand_over(deploy)
            return
        if beat.lost:
            self._lock_lost(actor, deploy, "while it ran", result.summary, link=result.link)
            return
        if beat.cancelled_by is not None:
            self._stopped(actor, deploy, beat.cancelled_by, result)
            return
        self._finish(actor, deploy, Ended(result.ok and verdict is not None and verdict.ok, result, verdict))

    def _auto_rollback(self, failed: Deploy) -> None:
        """Open the rollback of ``failed`` at once, requested in its requester's name (it runs at once where the
        environment needs no rollback approvals). Its failure is logged and audited: the announcement keeps the
        Rollback button for people."""
        assert self._rollbacks is not None
        d = self._d
        actor = Actor(failed.requester, source="auto_rollback")
        reason = f"auto_rollback: {failed.version} breached a metric guardrail in {failed.environment} ({failed.id})"
        try:
            reply = self._rollbacks.request(actor, failed.service, failed.environment, None, reason, undoing=failed.id)
        except OpsError as exc:
            log.warning("auto_rollback of %s was not opened: %s", failed.id, exc.message)
            support.audit(d, actor, "rollback.auto", failed, "failed", exc.message)
            return
        except Exception as exc:  # the deploy's failure is recorded already; a bug here must not hide it
            log.exception("auto_rollback of %s broke", failed.id)
            support.audit(d, actor, "rollback.auto", failed, "failed", type(exc).__name__)
            return
        support.audit(d, actor, "rollback.auto", failed, reply.outcome, reply=type(reply.message).__name__)

    def _shutting_down(self) -> bool:
        """The worker is stopping and its grace period is over: what is left is the reconciler's to finish."""
        return self._d.shutdown.overdue(self._d.config.durability.shutdown_grace_seconds)

    def _start(self, deploy_id: str) -> tuple[Deploy, DeployProvider, DeployOrder, str] | Deploy | None:
        """``approved`` → ``running`` with the 🚀 announcement, in one unit of work (retried while the database is away).

        None when there is nothing to start (already started or closed); the approved deploy itself when Redis says its
        lock is no longer its own (broken by an admin, or run out while it waited)."""
        d = self._d

        def start() -> tuple[Deploy, DeployProvider, DeployOrder, str] | Deploy | None:
            with d.uow() as uow:
                current = uow.deploys.get(deploy_id)
                if current is None or current.state is not DeployState.APPROVED:
                    return None
                if current.waits_for_ci:  # queued by mistake: the CI gate queues it again once CI is green
                    log.warning("%s was queued while it waits for CI; not started", current.id)
                    return None
                if current.lease is not None and self._lease_lost(current.lease):
                    return current
                spec = d.config.services[current.service].deploy if current.service in d.config.services else None
                if spec is None:
                    return None
                provider = d.providers.for_spec(spec)
                order = DeployOrder(
                    current.id,
                    current.kind,
                    current.service,
                    current.environment,
                    current.version,
                    current.requester,
                    current.reason,
                    current.previous_version,
                )
                description = provider.describe(order)
                now = d.clock.now()
                deploy = uow.deploys.transition(
                    deploy_id, frozenset({DeployState.APPROVED}), DeployState.RUNNING, started_at=now, heartbeat_at=now
                )
                if deploy is None:
                    return None
                message = DeployStarted(deploy, description)
                uow.outbox.post(d.config.channels.deployments, message, key=deploy.key("started"), origin=deploy.origin)
                uow.commit()
            return deploy, provider, order, description

        return until_back(start, within=RECORD_WITHIN_SECONDS, what=f"starting {deploy_id}", give_up=self._shutting_down)

    def _claim_provider(self, deploy: Deploy) -> bool:
        """Whether this run (the one that started ``deploy``) may call the provider; recorded if so.

        Retried while the database is away. A try whose commit went through but whose answer was lost looks like
        a refusal on the next try; the row then carries this run's own time, so it is recognised as this run's."""
        d = self._d
        started, at = deploy.started_at, d.clock.now()
        assert started is not None

        def claim() -> bool:
            with d.uow() as uow:
                claimed = uow.deploys.claim_provider_start(deploy.id, started, at)
                uow.commit()
            if claimed:
                return True
            with d.uow() as uow:
                current = uow.deploys.get(deploy.id)
            return current is not None and current.started_at == started and current.provider_started_at == at

        return until_back(
            claim, within=RECORD_WITHIN_SECONDS, what=f"recording the provider call of {deploy.id}", give_up=self._shutting_down
        )

    def _note(self, deploy_id: str, **changes: Any) -> None:
        def write() -> None:
            with self._d.uow() as uow:
                uow.deploys.update(deploy_id, **changes)
                uow.commit()

        until_back(
            write,
            within=RECORD_WITHIN_SECONDS,
            what=f"recording {', '.join(changes)} of {deploy_id}",
            give_up=self._shutting_down,
        )

    def _linked(self, deploy: Deploy, description: str, url: str) -> None:
        """The provider said where its run can be watched: the 🚀 announcement is edited to show it."""
        try:
            with self._d.uow() as uow:
                uow.outbox.update(deploy.key("started"), DeployStarted(deploy, description, url), origin=deploy.origin)
                uow.commit()
        except OpsError as exc:  # the announcement keeps no link; the outcome will carry it
            log.warning("could not add the run link to %s's announcement (%s)", deploy.id, exc.message)

    def _lease_lost(self, lease: Lease) -> bool:
        """Redis says the lease is not the lock's holder; Redis being away is not "lost" (the database keeps targets apart)."""
        try:
            return not self._d.locks.is_current(lease)
        except Unavailable:
            return False

    def _verify(self, deploy: Deploy, stop: StopSignal) -> verification.Verdict:
        d = self._d
        try:
            return verification.watch(
                d.config,
                d.clock,
                d.health,
                deploy.service,
                deploy.environment,
                deploy.version,
                sleep=stop.wait,
                stopped=lambda: stop.reason,
                metrics=d.metrics,
                since=deploy.started_at,
                guardrails_decide=not deploy.is_rollback,
            )
        except Exception as exc:  # a health engine bug must not pass a deploy, nor leave it running
            log.exception("verification of %s broke", deploy.id)
            return verification.Verdict(False, f"the verification itself failed ({type(exc).__name__})")

    def _finish(self, actor: Actor, deploy: Deploy, ended: Ended) -> None:
        """Record the outcome (if the lock is still ours) with its announcement; the lock released and listeners told
        once it is recorded, before the announcement goes out."""
        d, result, verdict = self._d, ended.result, ended.verdict
        lease = deploy.lease
        if lease is not None and self._lease_lost(lease):
            self._lock_lost(actor, deploy, "while it ran", result.summary, link=result.link)
            return
        if ended.ok and deploy.is_rollback:
            self._rolled_back(actor, deploy, verdict)
            return
        detail = verdict.summary if verdict is not None else result.summary
        to = DeployState.SUCCEEDED if ended.ok else DeployState.FAILED
        readings = verdict.guardrails if verdict is not None else ()
        can_roll_back = not ended.ok and not deploy.is_rollback and support.earlier_good(d, deploy) is not None
        roll_back_now = (
            can_roll_back
            and verdict is not None
            and verdict.breached
            and self._rollbacks is not None
            and d.config.environments[deploy.environment].auto_rollback
        )
        message = (
            DeploySucceeded(
                deploy, result.summary, verdict.checks_summary, verdict.verified, link=result.link, guardrails=readings
            )
            if ended.ok and verdict is not None
            else DeployFailed(
                deploy,
                "verification" if result.ok else "provider",
                detail,
                result.output_tail,
                result.link,
                can_roll_back=can_roll_back,
                guardrails=readings,
                auto_rollback=roll_back_now,
            )
        )

        def tell(done: Deploy) -> None:
            support.audit(
                d, actor, f"{done.kind.value}.{to.value}", done, "ok" if ended.ok else "failed", None if ended.ok else detail
            )
            if ended.ok:
                support.publish(d, done, "deploy.succeeded", support.event_summary(done, "succeeded"))
            else:
                kind = "rollback.failed" if done.is_rollback else "deploy.failed"
                support.publish(d, done, kind, support.event_summary(done, f"failed: {detail}"))
            if roll_back_now:
                self._auto_rollback(done)

        why = f"{support.what(deploy)} ({deploy.id}) {to.value}"
        self._record_end(actor, deploy, to, message, why, tell, detail=detail, output_tail=result.output_tail or None)

    def _record_end(
        self,
        actor: Actor,
        deploy: Deploy,
        to: DeployState,
        message: Any,
        why: str,
        tell: Callable[[Deploy], None],
        was: DeployState = DeployState.RUNNING,
        **changes: Any,
    ) -> Deploy | None:
        """``was`` (``running``) → ``to`` with ``message`` in the deployments channel, one unit of work. Once it commits and before
        the message goes out: the lock is released (or given back to a freeze) saying ``why``, and ``tell(deploy)``
        writes the audit row and tells listeners. None when someone else (the reconciler) ended it first. Retried while
        the database is away."""
        d = self._d

        def end() -> Deploy | None:
            with d.uow() as uow:
                done = uow.deploys.transition(deploy.id, frozenset({was}), to, finished_at=d.clock.now(), **changes)
                if done is None:
                    return None
                shown = _with_deploy(message, done)
                uow.outbox.post(d.config.channels.deployments, shown, key=done.key("outcome"), origin=done.origin)
                uow.after_commit(lambda: self._takeover.release_quietly(actor, done, why))
                uow.after_commit(lambda: tell(done))
                uow.commit()
            return done

        return until_back(
            end, within=RECORD_WITHIN_SECONDS, what=f"recording the end of {deploy.id}", give_up=self._shutting_down
        )

    def _rolled_back(self, actor: Actor, rollback: Deploy, verdict: verification.Verdict | None) -> None:
        d = self._d
        why = f"rollback to {rollback.version} ({rollback.id}) finished"
        locked = False
        # A rollback that took over an incident's freeze gives the lock back to it: the freeze outranks lock_after_rollback.
        retake = self._takeover.give_back(actor, rollback, why)
        if retake is None and d.config.environments[rollback.environment].lock_after_rollback:
            locked = self._lock_after_rollback(actor, rollback)
            if not locked:  # someone took the lock in between: it was free for a moment, so say so
                d.deploy_locks.notify_waiters(rollback.lock_name, why)
        elif retake is None:
            d.deploy_locks.release(rollback.lease, why)
        frozen_for = retake.incident.ref if isinstance(retake, Retake) and retake.frozen else None
        message = RolledBack(rollback, verdict.summary if verdict else "", locked, frozen_for)

        def end() -> Deploy | None:
            with d.uow() as uow:
                done = uow.deploys.transition(
                    rollback.id,
                    frozenset({DeployState.RUNNING}),
                    DeployState.SUCCEEDED,
                    finished_at=d.clock.now(),
                    detail=verdict.summary if verdict else None,
                )
                if done is None:
                    return None
                undone = None
                if done.rollback_of:
                    undone = uow.deploys.transition(
                        done.rollback_of,
                        frozenset({DeployState.SUCCEEDED, DeployState.FAILED}),
                        DeployState.ROLLED_BACK,
                        rolled_back_by=done.id,
                    )
                uow.outbox.post(
                    d.config.channels.deployments, _with_deploy(message, done), key=done.key("outcome"), origin=done.origin
                )
                uow.after_commit(lambda: told(done, undone))
                uow.commit()
            return done

        def told(done: Deploy, undone: Deploy | None) -> None:
            if undone is not None:
                support.audit(d, actor, "deploy.rolled_back", undone, "rolled_back", by=done.id)
            support.audit(d, actor, "rollback.succeeded", done, "ok")
            support.publish(d, done, "rollback.done", support.event_summary(done, f"succeeded (reason: {done.reason})"))

        until_back(end, within=RECORD_WITHIN_SECONDS, what=f"recording the end of {rollback.id}", give_up=self._shutting_down)

    def _lock_after_rollback(self, actor: Actor, rollback: Deploy) -> bool:
        """Hand the lock over to a hold that lasts until someone runs `/ops unlock` (or a week passes)."""
        locks = self._d.locks
        try:
            if rollback.lease is not None:
                locks.release(rollback.lease)
            purpose = f"locked after the rollback to {rollback.version} ({rollback.id}); `/ops unlock` to deploy again"
            held = locks.acquire(
                rollback.lock_name, holder=rollback.requester, purpose=purpose, ttl_seconds=MAX_MANUAL_LOCK.total_seconds()
            )
        except OpsError as exc:
            log.error("could not lock %s after the rollback %s: %s", rollback.lock_name, rollback.id, exc.message)
            held = None
        support.audit(self._d, actor, "rollback.locked", rollback, "ok" if held else "conflict")
        return held is not None

    def _lock_lost(
        self,
        actor: Actor,
        deploy: Deploy,
        stage: str,
        provider: str | None,
        was: DeployState = DeployState.RUNNING,
        link: str | None = None,
    ) -> None:
        d = self._d
        detail = f"its deploy lock was broken or ran out {stage}" + (f"; the provider said: {provider}" if provider else "")

        def tell(lost: Deploy) -> None:
            support.audit(d, actor, f"{lost.kind.value}.lock_lost", lost, "lock_lost", stage=stage, provider=provider)
            kind = "rollback.failed" if lost.is_rollback else "deploy.failed"
            support.publish(d, lost, kind, support.event_summary(lost, f"lost its lock {stage}"))

        why = f"{support.what(deploy)} ({deploy.id}) lost its lock {stage}"
        self._record_end(
            actor, deploy, DeployState.LOCK_LOST, LockLost(deploy, stage, provider, link), why, tell, was, detail=detail
        )

    def _stopped(self, actor: Actor, deploy: Deploy, by: str, result: ProviderResult) -> None:
        d = self._d
        detail = f"stopped by <@{by}> while it ran; the provider said: {result.summary}"

        def tell(done: Deploy) -> None:
            support.audit(d, Actor(by, source=actor.source), f"{done.kind.value}.stopped", done, "cancelled", detail)
            kind = "rollback.failed" if done.is_rollback else "deploy.failed"
            support.publish(d, done, kind, support.event_summary(done, "was stopped"))

        message = DeployStopped(deploy, by, result.summary, result.link)
        why = f"{support.what(deploy)} ({deploy.id}) was stopped"
        self._record_end(
            actor, deploy, DeployState.CANCELLED, message, why, tell, detail=detail, output_tail=result.output_tail or None
        )

    def _hand_over(self, deploy: Deploy) -> None:
        """The worker is going away: mark the run's heartbeat as gone so the reconciler takes it over at its next round."""
        try:
            self._note(deploy.id, heartbeat_at=HANDED_OVER)
        except OpsError as exc:
            log.error("could not hand %s over (%s); the reconciler takes it once its heartbeat is stale", deploy.id, exc.message)
        log.warning("%s handed over to the reconciler: the worker is shutting down", deploy.id)


def _with_deploy(message: Any, deploy: Deploy) -> Any:
    """``message`` about the deploy as recorded now (with its final state and times)."""
    return replace(message, deploy=deploy)


def _call_provider(provider: DeployProvider, order: DeployOrder, stop: StopSignal) -> ProviderResult:
    try:
        return provider.deploy(order, stop)
    except Exception as exc:  # a provider bug is a failed deploy, not a stuck one
        log.exception("deploy provider crashed for %s", order.deploy_id)
        return ProviderResult(False, f"the provider crashed ({type(exc).__name__})")
