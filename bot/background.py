"""What `opsbot worker` does besides its jobs: delivering waiting effects and the reconciler's rounds.

Two daemon threads. The deliverer tries due outbox effects every ``durability.deliver_every_seconds``.
The reconciler runs every ``durability.reconcile_every_seconds`` on the replica that holds the SQL lease
"reconciler" (one at a time across replicas and workers; a holder that dies lets go when its lease runs out):
each family's repair steps, then forgetting delivered effects older than ``durability.delivered_retention_days``.
A database or Redis outage only skips a round. The console and tests run the same rounds in-process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from datetime import timedelta

from bot.adapters.sql.leases import SqlLeases
from bot.domain.shared.errors import OpsError
from bot.wiring import Runtime

log = logging.getLogger("opsbot.background")
LEASE = "reconciler"


class Background:
    """The deliverer and the reconciler of one process; ``start()`` and ``stop()``, or call the rounds directly."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._leases = SqlLeases(runtime.engine, runtime.adapters.clock)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Background:
        durability = self._runtime.config.durability
        for name, every, round_ in (
            ("deliverer", durability.deliver_every_seconds, self.deliver_round),
            ("reconciler", durability.reconcile_every_seconds, self.reconcile_round),
        ):
            thread = threading.Thread(target=self._loop, args=(every, round_), name=f"opsbot-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=10)
        with contextlib.suppress(OpsError):  # the database is away: the lease runs out by itself
            self._leases.give_up(LEASE, self.holder)

    def _loop(self, every: float, round_: object) -> None:
        assert callable(round_)
        while not self._stopping.wait(every):
            try:
                round_()
            except OpsError as exc:  # Redis or the database is away: the next round tries again
                log.warning("%s skipped a round: %s", threading.current_thread().name, exc.message)
            except Exception:
                log.exception("%s round failed", threading.current_thread().name)

    def deliver_round(self) -> int:
        """Deliver what is due in the outbox; how many effects were attempted."""
        return self._runtime.delivery.drain()

    def reconcile_round(self) -> list[str]:
        """If this process holds the reconciler's lease: one round of repairs, and old delivered effects forgotten."""
        durability = self._runtime.config.durability
        if not self._leases.take(LEASE, self.holder, 3 * durability.reconcile_every_seconds):
            return []
        repaired = self._runtime.dispatcher.reconcile()
        self._runtime.metrics.reconciler_runs.inc()
        self._runtime.metrics.reconciler_repairs.inc(len(repaired))
        for line in repaired:
            log.warning("reconciler: %s", line)
        retention = timedelta(days=durability.delivered_retention_days)
        self._runtime.outbox.purge(self._runtime.adapters.clock.now() - retention)
        return repaired
