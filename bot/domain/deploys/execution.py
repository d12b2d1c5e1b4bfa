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

from bot.domain.locks import waiting as deploy_locks

from bot.domain.deploys import support as deploy_support

from bot.domain.deploys import freeze_takeover

from bot.domain.deploys import verification
from bot.domain.shared.context import Call
from bot.domain.deploys.messages import DeployFailed, DeployStarted, DeploySucceeded, LockLost, RolledBack
from bot.domain.deploys.ports import Deploy, DeployOrder, DeployState, ProviderResult
from bot.domain.dispatch import JobSpec
from bot.domain.shared.errors import OpsError
from bot.domain.locks.service import MAX_MANUAL_LOCK
from bot.domain.shared.ports import Lease, LockStore

log = logging.getLogger("opsbot.deploys")


class Heartbeat:
    """Renews a lease every third of its TTL on a thread; ``lost`` once a renewal is refused."""

    def __init__(self, locks: LockStore, lease: Lease, ttl_seconds: float) -> None:
        self._locks, self._lease, self._ttl = locks, lease, ttl_seconds
        self._stop = threading.Event()
        self.lost = False
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{lease.name}", daemon=True)

    def __enter__(self) -> "Heartbeat":
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


def run(call: Call, payload: dict[str, Any]) -> None:
    store, now = deploy_support.store(call), call.services.clock.now()
    deploy = store.transition(str(payload.get("deploy_id", "")), frozenset({DeployState.APPROVED}), DeployState.RUNNING, started_at=now)
    if deploy is None:
        return  # already run, or closed meanwhile: a repeated job does nothing
    lease = deploy.lease
    if lease is None or not call.services.locks.is_current(lease):
        _lock_lost(call, deploy, "before it started", None)
        return
    try:
        result, verdict = _execute(call, deploy, lease)
    except Exception as exc:  # whatever broke, the deploy ends failed and its lock is released, never stuck
        log.exception("deploy %s broke", deploy.id)
        result, verdict = ProviderResult(False, f"opsbot failed while running it ({type(exc).__name__})"), None
    _finish(call, deploy, result, verdict)


def _execute(call: Call, deploy: Deploy, lease: Lease) -> tuple[ProviderResult, verification.Verdict | None]:
    """Announce, run the provider under a heartbeat, then verify."""
    spec = call.config.services[deploy.service].deploy
    if spec is None:
        return ProviderResult(False, "the service no longer has a deploy provider configured"), None
    provider = deploy_support.providers(call).for_spec(spec)
    order = DeployOrder(deploy.id, deploy.kind, deploy.service, deploy.environment, deploy.version, deploy.requester,
                        deploy.reason, deploy.previous_version)
    description = provider.describe(order)
    deploy_support.announce(call, DeployStarted(deploy, description))
    deploy_support.publish(call, deploy, "rollback.started" if deploy.is_rollback else "deploy.started",
                           deploy_support.event_summary(deploy, "started"))
    with Heartbeat(call.services.locks, lease, call.config.deploys.lock_ttl_seconds):
        deploy_support.audit(call, "deploy.provider_call", deploy, "started", provider=description)
        result = _call_provider(provider, order)
        deploy_support.audit(call, "deploy.provider_result", deploy, "ok" if result.ok else "failed",
                             None if result.ok else result.summary, summary=result.summary)
        if not result.ok:
            return result, None
        verdict = _verify(call, deploy)
        deploy_support.audit(call, "deploy.verification", deploy, "ok" if verdict.ok else "failed",
                             None if verdict.ok else verdict.summary, summary=verdict.summary, checks=verdict.checks,
                             verified=verdict.verified)
    return result, verdict


def _call_provider(provider: Any, order: DeployOrder) -> ProviderResult:
    try:
        return provider.deploy(order)  # type: ignore[no-any-return]
    except Exception as exc:  # a provider bug is a failed deploy, not a stuck one
        log.exception("deploy provider crashed for %s", order.deploy_id)
        return ProviderResult(False, f"the provider crashed ({type(exc).__name__})")


def _verify(call: Call, deploy: Deploy) -> verification.Verdict:
    try:
        return verification.watch(call, deploy.service, deploy.environment, deploy.version)
    except Exception as exc:  # a health engine bug must not pass a deploy, nor leave it running
        log.exception("verification of %s broke", deploy.id)
        return verification.Verdict(False, f"the verification itself failed ({type(exc).__name__})")


def _finish(call: Call, deploy: Deploy, result: ProviderResult, verdict: verification.Verdict | None) -> None:
    """Record the outcome if the lease is still current, release the lock, announce, publish."""
    lease = deploy.lease
    if lease is None or not call.services.locks.is_current(lease):
        _lock_lost(call, deploy, "while it ran", result.summary)
        return
    ok = result.ok and verdict is not None and verdict.ok
    detail = verdict.summary if verdict is not None else result.summary
    store = deploy_support.store(call)
    done = store.transition(deploy.id, frozenset({DeployState.RUNNING}), DeployState.SUCCEEDED if ok else DeployState.FAILED,
                            finished_at=call.services.clock.now(), detail=detail, output_tail=result.output_tail or None)
    if done is None:
        return
    deploy_support.audit(call, f"{deploy.kind.value}.{'succeeded' if ok else 'failed'}", done, "ok" if ok else "failed",
                         None if ok else detail)
    if ok and deploy.is_rollback:
        _rolled_back(call, done, verdict)
        return
    freeze_takeover.release(call, done, f"{deploy_support.what(done)} ({done.id}) {'succeeded' if ok else 'failed'}")
    if ok:
        assert verdict is not None
        deploy_support.announce(call, DeploySucceeded(done, result.summary, verdict.summary, verdict.verified))
        deploy_support.publish(call, done, "deploy.succeeded", deploy_support.event_summary(done, "succeeded"))
        return
    stage = "verification" if result.ok else "provider"
    deploy_support.announce(call, DeployFailed(done, stage, detail, result.output_tail, result.link))
    deploy_support.publish(call, done, "rollback.failed" if done.is_rollback else "deploy.failed",
                           deploy_support.event_summary(done, f"failed: {detail}"))


def _rolled_back(call: Call, rollback: Deploy, verdict: verification.Verdict | None) -> None:
    store = deploy_support.store(call)
    if rollback.rollback_of:
        undone = store.transition(rollback.rollback_of, frozenset({DeployState.SUCCEEDED, DeployState.FAILED}),
                                  DeployState.ROLLED_BACK, rolled_back_by=rollback.id)
        if undone is not None:
            deploy_support.audit(call, "deploy.rolled_back", undone, "rolled_back", by=rollback.id)
    why = f"rollback to {rollback.version} ({rollback.id}) finished"
    locked = False
    # A rollback that took over an incident's freeze gives the lock back to it: the freeze outranks lock_after_rollback.
    retake = freeze_takeover.give_back(call, rollback, why)
    if retake is None and call.config.environments[rollback.environment].lock_after_rollback:
        locked = _lock_after_rollback(call, rollback)
        if not locked:  # someone took the lock in between: it was free for a moment, so say so
            deploy_locks.notify_waiters(call, rollback.lock_name, why)
    elif retake is None:
        deploy_locks.release(call, rollback.lease, why)
    frozen_for = retake.incident.ref if retake is not None and retake.frozen else None
    deploy_support.announce(call, RolledBack(rollback, verdict.summary if verdict else "", locked, frozen_for))
    deploy_support.publish(call, rollback, "rollback.done",
                           deploy_support.event_summary(rollback, f"succeeded (reason: {rollback.reason})"))


def _lock_after_rollback(call: Call, rollback: Deploy) -> bool:
    """Hand the lock over to a hold that lasts until someone runs `/ops unlock` (or a week passes)."""
    locks = call.services.locks
    if rollback.lease is not None:
        locks.release(rollback.lease)
    purpose = f"locked after the rollback to {rollback.version} ({rollback.id}); `/ops unlock` to deploy again"
    held = locks.acquire(rollback.lock_name, holder=rollback.requester, purpose=purpose, ttl_seconds=MAX_MANUAL_LOCK.total_seconds())
    deploy_support.audit(call, "rollback.locked", rollback, "ok" if held else "conflict")
    return held is not None


def _lock_lost(call: Call, deploy: Deploy, stage: str, provider: str | None) -> None:
    lost = deploy_support.store(call).transition(
        deploy.id, frozenset({DeployState.RUNNING}), DeployState.LOCK_LOST, finished_at=call.services.clock.now(),
        detail=f"its deploy lock was broken or ran out {stage}" + (f"; the provider said: {provider}" if provider else ""))
    deploy_support.audit(call, f"{deploy.kind.value}.lock_lost", deploy, "lock_lost", stage=stage, provider=provider)
    freeze_takeover.release_quietly(call, deploy, f"{deploy_support.what(deploy)} ({deploy.id}) lost its lock {stage}")
    deploy_support.announce(call, LockLost(lost or deploy, stage, provider))
    deploy_support.publish(call, deploy, "rollback.failed" if deploy.is_rollback else "deploy.failed",
                           deploy_support.event_summary(deploy, f"lost its lock {stage}"))


JOBS = [JobSpec("deploys.run", run)]
COMMANDS: list[Any] = []
