"""Incident freezes lent to rollbacks, with fakes: the races and half-done cases the end-to-end tests cannot time."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from bot.domain.shared.context import Call, Services
from bot.domain.incidents import freezes
from bot.domain.incidents.model import Incident, Status
from bot.domain.shared.policy import Actor
from tests.fakes import FakeLocks
from tests.unit.incident_fakes import FakeIncidentStore, fake_services

NOW = datetime(2026, 11, 23, 14, 0, tzinfo=timezone.utc)
LOCK = "deploy/api/production"


def frozen_incident() -> tuple[Call, Incident]:
    """An open incident for api whose freeze holds deploy/api/production."""
    services = fake_services()
    services.locks = FakeLocks(services.clock)
    call = Call(Actor("U0DEV", "C0OPS"), services)
    incident = store_of(services).create(Incident(0, "Checkout errors", "P1", ("api",), Status.INVESTIGATING, "5% fail", "U0DEV",
                                                  NOW, "U0DEV", channel_id="C0INC", channel_name="inc-checkout"))
    lock = freezes.take(call, incident, LOCK, "U0DEV")
    assert lock is not None
    _, incident = store_of(services).change(incident.id, lambda i: replace(i, frozen=(lock,)))
    return call, incident


def store_of(services: Services) -> FakeIncidentStore:
    assert isinstance(services.incidents, FakeIncidentStore)
    return services.incidents


def test_a_freeze_lent_to_one_rollback_is_not_lent_to_a_second() -> None:
    call, incident = frozen_incident()
    assert freezes.lend(call, LOCK, "r-00000001") == store_of(call.services).get(incident.id)
    assert call.services.locks.holder(LOCK) is None  # free for the first rollback to take
    assert freezes.lend(call, LOCK, "r-00000002") is None


def test_a_lock_the_takeover_never_released_stays_the_freeze_without_a_new_lease() -> None:
    call, incident = frozen_incident()
    (lock,) = incident.frozen
    store_of(call.services).change(incident.id, lambda i: replace(i, frozen=(replace(lock, lent_to="r-00000001"),)))
    retake = freezes.take_back(call, "r-00000001", None, "rollback r-00000001 could not take the lock")
    assert retake is not None and retake.frozen
    assert store_of(call.services).get(incident.id).frozen == (lock,)  # type: ignore[union-attr]
    assert call.services.locks.is_current(lock.lease)


def test_a_freeze_taken_back_just_after_the_incident_was_resolved_is_released_again() -> None:
    call, incident = frozen_incident()
    freezes.lend(call, LOCK, "r-00000001")
    store = store_of(call.services)
    looked_up = store.open_incidents()
    store.change(incident.id, lambda i: replace(i, status=Status.RESOLVED, resolved_at=NOW))  # resolve wins the race
    store.open_incidents = lambda: looked_up  # type: ignore[method-assign]
    retake = freezes.take_back(call, "r-00000001", None, "rollback r-00000001 finished")
    assert retake is not None and not retake.frozen and retake.why_not == "INC-1 was resolved meanwhile"
    assert call.services.locks.holder(LOCK) is None


def test_resolving_leaves_a_lent_lock_to_its_rollback_and_says_so() -> None:
    call, incident = frozen_incident()
    freezes.lend(call, LOCK, "r-00000001")
    rollback = call.services.locks.acquire(LOCK, holder="U0DEV", purpose="rollback to v1.2.2 (r-00000001)", ttl_seconds=60)
    freezes.lift(call, store_of(call.services).get(incident.id))  # type: ignore[arg-type]
    assert rollback is not None and call.services.locks.is_current(rollback)
    assert store_of(call.services).entries[-1].text == (
        "not frozen again after the rollback now that the incident is resolved: deploy/api/production (with rollback r-00000001)")
