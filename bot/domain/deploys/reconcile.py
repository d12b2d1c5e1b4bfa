"""Finishing what a crash or an outage left half-done: the deploys family's steps of the reconciler's rounds.

Run by one replica at a time (a lease), every ``durability.reconcile_every_seconds``:

- A deploy ``running`` with no heartbeat for ``durability.stale_after_seconds`` has lost its worker (killed,
  or shut down and handed over). Its process group is ended if it runs on this host. If its provider was
  never called, it goes back to the queue; otherwise its outcome is unknown, so the job ``deploys.settle``
  runs the verification (health checks and version endpoint) and records succeeded, failed or unknown,
  announced once, the requester told directly, the lock released.
- A deploy ``approved`` that has not started for ``durability.never_started_after_seconds`` is queued again
  (its job was lost with Redis), or, when its lock is gone, ends ``lock_lost`` and says so.
- A deploy that is over but whose lock Redis still holds for it gets the lock released (or given back to the
  incident freeze it came from), so the next deploy need not wait for the TTL.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from bot.domain.deploys import support, verification
from bot.domain.deploys.deps import DeployDeps
from bot.domain.deploys.freeze_takeover import FreezeTakeover
from bot.domain.deploys.messages import DeployFailed, DeploySucceeded, NotStarted, OutcomeForRequester, OutcomeUnknown
from bot.domain.deploys.model import Deploy, DeployState
from bot.domain.deploys.outcomes import RUN_JOB, run_key
from bot.domain.shared.errors import OpsError, Unavailable
from bot.domain.shared.policy import Actor

log = logging.getLogger("opsbot.reconciler")
SETTLE_JOB = "deploys.settle"
LOCK_LOOKBACK = timedelta(days=2)  # ended deploys whose locks are checked (a lock's TTL is at most a day)


def settle_key(deploy_id: str) -> str:
    return f"deploy:{deploy_id}:settle"


class DeployReconciler:
    """The reconciler's deploy steps, and the job that settles a run whose worker is gone."""

    def __init__(self, deps: DeployDeps, takeover: FreezeTakeover) -> None:
        self._d = deps
        self._takeover = takeover

    def round(self, actor: Actor) -> list[str]:
        """One round of every step; what was repaired, in words."""
        return [*self.stale_runs(actor), *self.never_started(actor), *self.held_locks(actor)]

    # ----- runs whose worker is gone -----
    def stale_runs(self, actor: Actor) -> list[str]:
        d = self._d
        now = d.clock.now()
        with d.uow() as uow:
            stale = uow.deploys.stale_runs(now - timedelta(seconds=d.config.durability.stale_after_seconds))
        repaired = []
        for deploy in stale:
            if deploy.provider_process and d.providers.end_process(deploy.provider_process):
                support.audit(d, actor, f"{deploy.kind.value}.process_ended", deploy, "ok", process=deploy.provider_process)
            if deploy.provider_started_at is None:
                repaired.append(self._requeue_unstarted(actor, deploy))
            else:
                repaired.append(self._queue_settle(actor, deploy))
        return [r for r in repaired if r]

    def _requeue_unstarted(self, actor: Actor, deploy: Deploy) -> str:
        """Its worker died before calling the provider: run it again (the provider is still called at most once)."""
        d = self._d
        with d.uow() as uow:
            back = uow.deploys.requeue_unstarted(deploy.id)  # not if a run recorded its provider call meanwhile
            if back is None:
                return ""
            uow.outbox.submit(RUN_JOB, {"deploy_id": deploy.id}, key=run_key(deploy.id), origin=deploy.origin)
            uow.commit()
        support.audit(
            d, actor, f"{deploy.kind.value}.requeued", deploy, "ok", why="its worker stopped before it called the provider"
        )
        return f"{deploy.id}: its worker stopped before the provider was called; queued again"

    def _queue_settle(self, actor: Actor, deploy: Deploy) -> str:
        d = self._d
        with d.uow() as uow:
            if uow.outbox.waiting(settle_key(deploy.id)):
                return ""
            # Fresh heartbeat: the next rounds leave it to the settle job (which beats while it verifies).
            if uow.deploys.beat(deploy.id, d.clock.now()) is None:
                return ""
            last = deploy.heartbeat_at.isoformat() if deploy.heartbeat_at and deploy.heartbeat_at.year > 1970 else None
            payload = {"deploy_id": deploy.id, "last_heartbeat": last}  # None: its worker handed it over at shutdown
            uow.outbox.submit(SETTLE_JOB, payload, key=settle_key(deploy.id), origin=deploy.origin)
            uow.commit()
        support.audit(d, actor, f"{deploy.kind.value}.abandoned", deploy, "unknown", last_heartbeat=str(deploy.heartbeat_at))
        return f"{deploy.id}: its worker stopped after the provider was called; verifying to settle it"

    def settle(self, actor: Actor, payload: dict[str, Any]) -> None:
        """The job: decide a run whose worker is gone by verifying the service; announce it once; tell the requester."""
        d = self._d
        with d.uow() as uow:
            deploy = uow.deploys.get(str(payload.get("deploy_id", "")))
        if deploy is None or deploy.state is not DeployState.RUNNING:
            return
        beating = threading.Event()
        beat = threading.Thread(target=self._beat_while, args=(deploy.id, beating), name=f"settle-{deploy.id}", daemon=True)
        beat.start()
        try:
            verdict = verification.watch(
                d.config,
                d.clock,
                d.health,
                deploy.service,
                deploy.environment,
                deploy.version,
                metrics=d.metrics,
                since=deploy.started_at,
                guardrails_decide=not deploy.is_rollback,
            )
        except Exception as exc:  # the health engine broke: nobody can say, an admin settles it
            log.exception("verifying %s to settle it broke", deploy.id)
            verdict = verification.Verdict(False, f"the verification itself failed ({type(exc).__name__})", verified=False)
        finally:
            beating.set()
            beat.join(timeout=5)
        last = payload.get("last_heartbeat")
        when = f"{datetime.fromisoformat(str(last)):%H:%M:%S} UTC" if last else "its shutdown"
        why = f"Its worker stopped (no heartbeat since {when}), so opsbot checked the service to decide: {verdict.summary}."
        message: Any
        if not verdict.verified:
            to, message = DeployState.UNKNOWN, OutcomeUnknown(deploy, why)
        elif verdict.ok:
            to, message = (
                DeployState.SUCCEEDED,
                DeploySucceeded(
                    deploy, "(its worker stopped)", verdict.checks_summary, True, note=why, guardrails=verdict.guardrails
                ),
            )
        else:
            can_roll_back = support.earlier_good(d, deploy) is not None
            to, message = (
                DeployState.FAILED,
                DeployFailed(
                    deploy, "verification", verdict.summary, note=why, can_roll_back=can_roll_back, guardrails=verdict.guardrails
                ),
            )
        done = self._record(deploy, to, message, verdict.summary, why)
        if done is None:
            return
        support.audit(
            d,
            actor,
            f"{done.kind.value}.{to.value}",
            done,
            to.value,
            None if verdict.ok else verdict.summary,
            settled_by="reconciler",
        )
        self._takeover.release_quietly(actor, done, f"{support.what(done)} ({done.id}) was settled: {to.value}")
        kind = "rollback" if done.is_rollback else "deploy"
        summary = {DeployState.SUCCEEDED: "succeeded", DeployState.FAILED: f"failed: {verdict.summary}"}.get(
            to, "outcome unknown"
        )
        support.publish(
            d,
            done,
            f"{kind}.{'done' if done.is_rollback and to is DeployState.SUCCEEDED else to.value}",
            support.event_summary(done, summary),
        )

    def _record(self, deploy: Deploy, to: DeployState, message: Any, detail: str, why: str) -> Deploy | None:
        d = self._d
        with d.uow() as uow:
            done = uow.deploys.transition(
                deploy.id, frozenset({DeployState.RUNNING}), to, finished_at=d.clock.now(), detail=detail
            )
            if done is None:
                return None  # its run came back and ended it after all
            if to is DeployState.SUCCEEDED and done.is_rollback and done.rollback_of:
                uow.deploys.transition(
                    done.rollback_of,
                    frozenset({DeployState.SUCCEEDED, DeployState.FAILED}),
                    DeployState.ROLLED_BACK,
                    rolled_back_by=done.id,
                )
            uow.outbox.post(
                d.config.channels.deployments, replace(message, deploy=done), key=done.key("outcome"), origin=done.origin
            )
            outcome = {DeployState.SUCCEEDED: "succeeded", DeployState.FAILED: "failed"}.get(
                to, "unknown: an admin must settle it"
            )
            uow.outbox.dm(done.requester, OutcomeForRequester(done, outcome, why), key=done.key("requester"), origin=done.origin)
            uow.commit()
        return done

    def _beat_while(self, deploy_id: str, done: threading.Event) -> None:
        interval = self._d.config.durability.heartbeat_seconds
        while not done.wait(interval):
            try:
                with self._d.uow() as uow:
                    uow.deploys.beat(deploy_id, self._d.clock.now())
                    uow.commit()
            except OpsError as exc:
                log.warning("settling %s: could not record its heartbeat (%s)", deploy_id, exc.message)

    # ----- approved, never started -----
    def never_started(self, actor: Actor) -> list[str]:
        d = self._d
        now = d.clock.now()
        with d.uow() as uow:
            waiting = uow.deploys.waiting_to_start(now - timedelta(seconds=d.config.durability.never_started_after_seconds))
        waiting = [w for w in waiting if not w.waits_for_ci]  # the CI gate queues those once CI is green
        repaired = []
        for deploy in waiting:
            with d.uow() as uow:
                if uow.outbox.waiting(run_key(deploy.id)):
                    continue  # its job is still on its way (Redis is away): nothing to add
            if self._lock_gone(deploy):
                repaired.append(self._cancel_lockless(actor, deploy))
                continue
            with d.uow() as uow:
                uow.outbox.submit(RUN_JOB, {"deploy_id": deploy.id}, key=run_key(deploy.id), origin=deploy.origin)
                uow.commit()
            support.audit(d, actor, f"{deploy.kind.value}.requeued", deploy, "ok", why="approved but not started")
            repaired.append(f"{deploy.id}: approved but never started; queued again")
        return repaired

    def _lock_gone(self, deploy: Deploy) -> bool:
        lease = deploy.lease
        if lease is None:
            return True
        try:
            return not self._d.locks.is_current(lease)
        except Unavailable:
            return False

    def _cancel_lockless(self, actor: Actor, deploy: Deploy) -> str:
        d = self._d
        why = "its deploy lock ran out or was broken before it could start"
        with d.uow() as uow:
            ended = uow.deploys.transition(
                deploy.id, frozenset({DeployState.APPROVED}), DeployState.LOCK_LOST, finished_at=d.clock.now(), detail=why
            )
            if ended is None:
                return ""
            uow.outbox.post(
                d.config.channels.deployments, NotStarted(ended, why), key=ended.key("not-started"), origin=ended.origin
            )
            uow.commit()
        support.audit(d, actor, f"{deploy.kind.value}.not_started", ended, "lock_lost", why)
        return f"{deploy.id}: approved but never started, and its lock is gone; ended"

    # ----- locks of deploys that are over -----
    def held_locks(self, actor: Actor) -> list[str]:
        d = self._d
        with d.uow() as uow:
            ended = uow.deploys.finished_since(d.clock.now() - LOCK_LOOKBACK)
        repaired: list[str] = []
        for deploy in ended:
            lease = deploy.lease
            try:
                if lease is None or not d.locks.is_current(lease):
                    continue
            except Unavailable:
                return repaired  # Redis is away: the next round looks again
            self._takeover.release_quietly(actor, deploy, f"{support.what(deploy)} ({deploy.id}) is over ({deploy.state.value})")
            support.audit(d, actor, f"{deploy.kind.value}.lock_released", deploy, "ok", why=f"it is {deploy.state.value}")
            repaired.append(f"{deploy.id}: {deploy.state.value}, but its lock was still held; released")
        return repaired
