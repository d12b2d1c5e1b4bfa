"""Incident freezes lent to rollbacks, with fakes: the races and half-done cases the end-to-end tests cannot time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from bot.domain.incidents.freezes import IncidentFreezes
from bot.domain.incidents.model import Incident, Status
from bot.domain.shared.policy import Actor
from tests.fakes import FakeLocks
from tests.unit.incident_fakes import FakeIncidentRepository, incident_world

NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
LOCK = "deploy/api/production"


@dataclass
class Setup:
    actor: Actor
    freezes: IncidentFreezes
    locks: FakeLocks
    store: FakeIncidentRepository

    def change(self, incident_id: int, rule: Callable[[Incident], Incident]) -> None:
        self.store.save(rule(self.store.incidents[incident_id]))


def frozen_incident() -> tuple[Setup, Incident]:
    """An open incident for api whose freeze holds deploy/api/production."""
    world, incidents, store = incident_world()
    setup = Setup(Actor("U0DEV", "C0OPS"), incidents.freezes, world.locks, store)
    incident = store.create(
        Incident(
            0,
            "Checkout errors",
            "P1",
            ("api",),
            Status.INVESTIGATING,
            "5% fail",
            "U0DEV",
            NOW,
            "U0DEV",
            channel_id="C0INC",
            channel_name="inc-checkout",
        )
    )
    lock = setup.freezes.take(incident, LOCK, "U0DEV")
    assert lock is not None
    setup.change(incident.id, lambda i: replace(i, frozen=(lock,)))
    return setup, store.incidents[incident.id]


def test_a_freeze_lent_to_one_rollback_is_not_lent_to_a_second() -> None:
    setup, incident = frozen_incident()
    assert setup.freezes.lend(setup.actor, LOCK, "r-00000001") == setup.store.get(incident.id)
    assert setup.locks.holder(LOCK) is None  # free for the first rollback to take
    assert setup.freezes.lend(setup.actor, LOCK, "r-00000002") is None


def test_a_lock_the_takeover_never_released_stays_the_freeze_without_a_new_lease() -> None:
    setup, incident = frozen_incident()
    (lock,) = incident.frozen
    setup.change(incident.id, lambda i: replace(i, frozen=(replace(lock, lent_to="r-00000001"),)))
    retake = setup.freezes.take_back(setup.actor, "r-00000001", None, "rollback r-00000001 could not take the lock")
    assert retake is not None and retake.frozen
    assert setup.store.get(incident.id).frozen == (lock,)  # type: ignore[union-attr]
    assert setup.locks.is_current(lock.lease)


def test_a_freeze_taken_back_just_after_the_incident_was_resolved_is_released_again() -> None:
    setup, incident = frozen_incident()
    setup.freezes.lend(setup.actor, LOCK, "r-00000001")
    store = setup.store
    looked_up = store.open_incidents()
    setup.change(incident.id, lambda i: replace(i, status=Status.RESOLVED, resolved_at=NOW))  # resolve wins the race
    store.open_incidents = lambda: looked_up  # type: ignore[method-assign]
    retake = setup.freezes.take_back(setup.actor, "r-00000001", None, "rollback r-00000001 finished")
    assert retake is not None and not retake.frozen and retake.why_not == "INC-1 was resolved meanwhile"
    assert setup.locks.holder(LOCK) is None


def test_resolving_leaves_a_lent_lock_to_its_rollback_and_says_so() -> None:
    setup, incident = frozen_incident()
    setup.freezes.lend(setup.actor, LOCK, "r-00000001")
    rollback = setup.locks.acquire(LOCK, holder="U0DEV", purpose="rollback to v1.2.2 (r-00000001)", ttl_seconds=60)
    setup.freezes.lift(setup.actor, setup.store.get(incident.id))  # type: ignore[arg-type]
    assert rollback is not None and setup.locks.is_current(rollback)
    assert setup.store.entries[-1].text == (
        "not frozen again after the rollback now that the incident is resolved: deploy/api/production (with rollback r-00000001)"
    )
