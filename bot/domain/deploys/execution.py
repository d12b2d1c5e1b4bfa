"""The job ``deploys.run``: announce, run the provider, verify, record the result under the lock's fence.

It runs on `opsbot worker` (or a thread in the console), never in the request Slack waits on.
The row's compare-and-set ``approved`` → ``running`` lets exactly one run through, however many
times the job is submitted. A heartbeat renews the lock's TTL while the deploy runs; before the
result is recorded, the lease must still be the lock's current holder (its fencing token), so a
deploy whose lock was broken by `/ops unlock` cannot record itself as the environment's state.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from bot.domain.deploys import support, verification
from bot.domain.deploys.deps import DeployDeps
from bot.domain.deploys.freeze_takeover import FreezeTakeover
from bot.domain.deploys.messages import DeployFailed, DeployStarted, DeploySucceeded, LockLost, RolledBack
from bot.domain.deploys.model import Deploy, DeployOrder, DeployState, ProviderResult
from bot.domain.deploys.ports import DeployProvider
from bot.domain.locks.ports import MAX_MANUAL_LOCK, Lease, LockStore
from bot.domain.shared.errors import OpsError
from bot.domain.shared.policy import Actor

log = logging.getLogger("opsbot.deploys")


class Heartbeat:
    """Renews a lease every third of its TTL on a thread; ``lost`` once a renewal is refused."""

    def __init__(self, locks: LockStore, lease: Lease, ttl_seconds: float) -> None:
        self._locks, self._lease, self._ttl = locks, lease, ttl_seconds
        self._stop = threading.Event()
        self.lost = False
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{lease.name}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        while not self._stop.wait(self._ttl / 3):
            try:
                if not self._locks.extend(self._lease, self._ttl):
                    self.lost = True
                    return
            except OpsError as exc:  # a Redis blip: keep trying; the TTL covers two missed beats
                log.warning("heartbeat for %s failed: %s", self._lease.name, exc.message)


class DeployRuns:
    """Running an approved deploy or rollback to its recorded, announced end."""

    def __init__(self, deps: DeployDeps, takeover: FreezeTakeover) -> None:
        self._d = deps
        self._takeover = takeover

    def run(self, actor: Actor, payload: dict[str, Any]) -> None:
        d = self._d
        deploy = support.transition(
            d, str(payload.get("deploy_id", "")), frozenset({DeployState.APPROVED}), DeployState.RUNNING, started_at=d.clock.now()
        )
        if deploy is None:
            return  # already run, or closed meanwhile: a repeated job does nothing
        lease = deploy.lease
        if lease is None or not d.locks.is_current(lease):
            self._lock_lost(actor, deploy, "before it started", None)
            return
        try:
            result, verdict = self._execute(actor, deploy, lease)
        except Exception as exc:  # whatever broke, the deploy ends failed and its lock is released, never stuck
            log.exception("deploy %s broke", deploy.id)
            result, verdict = ProviderResult(False, f"opsbot failed while running it ({type(exc).__name__})"), None
        self._finish(actor, deploy, result, verdict)

    def _execute(self, actor: Actor, deploy: Deploy, lease: Lease) -> tuple[ProviderResult, verification.Verdict | None]:
        """Announce, run the provider under a heartbeat, then verify."""
        d = self._d
        spec = d.config.services[deploy.service].deploy
        if spec is None:
            return ProviderResult(False, "the service no longer has a deploy provider configured"), None
        provider = d.providers.for_spec(spec)
        order = DeployOrder(
            deploy.id,
            deploy.kind,
            deploy.service,
            deploy.environment,
            deploy.version,
            deploy.requester,
            deploy.reason,
            deploy.previous_version,
        )
        description = provider.describe(order)
        support.announce(d, DeployStarted(deploy, description))
        support.publish(
            d, deploy, "rollback.started" if deploy.is_rollback else "deploy.started", support.event_summary(deploy, "started")
        )
        with Heartbeat(d.locks, lease, d.config.deploys.lock_ttl_seconds):
            support.audit(d, actor, "deploy.provider_call", deploy, "started", provider=description)
            result = _call_provider(provider, order)
            support.audit(
                d,
                actor,
                "deploy.provider_result",
                deploy,
                "ok" if result.ok else "failed",
                None if result.ok else result.summary,
                summary=result.summary,
            )
            if not result.ok:
                return result, None
            verdict = self._verify(deploy)
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
        return result, verdict

    def _verify(self, deploy: Deploy) -> verification.Verdict:
        try:
            return verification.watch(
                self._d.config, self._d.clock, self._d.health, deploy.service, deploy.environment, deploy.version
            )
        except Exception as exc:  # a health engine bug must not pass a deploy, nor leave it running
            log.exception("verification of %s broke", deploy.id)
            return verification.Verdict(False, f"the verification itself failed ({type(exc).__name__})")

    def _finish(self, actor: Actor, deploy: Deploy, result: ProviderResult, verdict: verification.Verdict | None) -> None:
        """Record the outcome if the lease is still current, release the lock, announce, publish."""
        d = self._d
        lease = deploy.lease
        if lease is None or not d.locks.is_current(lease):
            self._lock_lost(actor, deploy, "while it ran", result.summary)
            return
        ok = result.ok and verdict is not None and verdict.ok
        detail = verdict.summary if verdict is not None else result.summary
        done = support.transition(
            d,
            deploy.id,
            frozenset({DeployState.RUNNING}),
            DeployState.SUCCEEDED if ok else DeployState.FAILED,
            finished_at=d.clock.now(),
            detail=detail,
            output_tail=result.output_tail or None,
        )
        if done is None:
            return
        support.audit(
            d,
            actor,
            f"{deploy.kind.value}.{'succeeded' if ok else 'failed'}",
            done,
            "ok" if ok else "failed",
            None if ok else detail,
        )
        if ok and deploy.is_rollback:
            self._rolled_back(actor, done, verdict)
            return
        self._takeover.release(actor, done, f"{support.what(done)} ({done.id}) {'succeeded' if ok else 'failed'}")
        if ok:
            assert verdict is not None
            support.announce(d, DeploySucceeded(done, result.summary, verdict.summary, verdict.verified))
            support.publish(d, done, "deploy.succeeded", support.event_summary(done, "succeeded"))
            return
        stage = "verification" if result.ok else "provider"
        support.announce(d, DeployFailed(done, stage, detail, result.output_tail, result.link))
        support.publish(
            d, done, "rollback.failed" if done.is_rollback else "deploy.failed", support.event_summary(done, f"failed: {detail}")
        )

    def _rolled_back(self, actor: Actor, rollback: Deploy, verdict: verification.Verdict | None) -> None:
        d = self._d
        if rollback.rollback_of:
            undone = support.transition(
                d,
                rollback.rollback_of,
                frozenset({DeployState.SUCCEEDED, DeployState.FAILED}),
                DeployState.ROLLED_BACK,
                rolled_back_by=rollback.id,
            )
            if undone is not None:
                support.audit(d, actor, "deploy.rolled_back", undone, "rolled_back", by=rollback.id)
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
        frozen_for = retake.incident.ref if retake is not None and retake.frozen else None
        support.announce(d, RolledBack(rollback, verdict.summary if verdict else "", locked, frozen_for))
        support.publish(d, rollback, "rollback.done", support.event_summary(rollback, f"succeeded (reason: {rollback.reason})"))

    def _lock_after_rollback(self, actor: Actor, rollback: Deploy) -> bool:
        """Hand the lock over to a hold that lasts until someone runs `/ops unlock` (or a week passes)."""
        locks = self._d.locks
        if rollback.lease is not None:
            locks.release(rollback.lease)
        purpose = f"locked after the rollback to {rollback.version} ({rollback.id}); `/ops unlock` to deploy again"
        held = locks.acquire(
            rollback.lock_name, holder=rollback.requester, purpose=purpose, ttl_seconds=MAX_MANUAL_LOCK.total_seconds()
        )
        support.audit(self._d, actor, "rollback.locked", rollback, "ok" if held else "conflict")
        return held is not None

    def _lock_lost(self, actor: Actor, deploy: Deploy, stage: str, provider: str | None) -> None:
        d = self._d
        lost = support.transition(
            d,
            deploy.id,
            frozenset({DeployState.RUNNING}),
            DeployState.LOCK_LOST,
            finished_at=d.clock.now(),
            detail=f"its deploy lock was broken or ran out {stage}" + (f"; the provider said: {provider}" if provider else ""),
        )
        support.audit(d, actor, f"{deploy.kind.value}.lock_lost", deploy, "lock_lost", stage=stage, provider=provider)
        self._takeover.release_quietly(actor, deploy, f"{support.what(deploy)} ({deploy.id}) lost its lock {stage}")
        support.announce(d, LockLost(lost or deploy, stage, provider))
        support.publish(
            d,
            deploy,
            "rollback.failed" if deploy.is_rollback else "deploy.failed",
            support.event_summary(deploy, f"lost its lock {stage}"),
        )


def _call_provider(provider: DeployProvider, order: DeployOrder) -> ProviderResult:
    try:
        return provider.deploy(order)
    except Exception as exc:  # a provider bug is a failed deploy, not a stuck one
        log.exception("deploy provider crashed for %s", order.deploy_id)
        return ProviderResult(False, f"the provider crashed ({type(exc).__name__})")
