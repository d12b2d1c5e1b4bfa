"""How opsbot rides out faults: the reconciler's rounds, run heartbeats, and delivering effects (docs/reliability.md)."""

from __future__ import annotations

from pydantic import Field, model_validator

from bot.config.common import Strict


class Durability(Strict):
    """Every interval here is configurable so tests and chaos runs can use seconds; the defaults suit production."""

    reconcile_every_seconds: float = Field(default=15, gt=0, le=3600)
    heartbeat_seconds: float = Field(default=10, gt=0, le=600)  # a running deploy's heartbeat on its row (and its lock)
    stale_after_seconds: float = Field(default=60, gt=0, le=24 * 3600)  # no heartbeat this long: the run is gone
    never_started_after_seconds: float = Field(default=120, gt=0, le=24 * 3600)  # approved, not running yet: queue it again
    deliver_every_seconds: float = Field(default=1, gt=0, le=60)  # `opsbot worker` retries waiting effects this often
    effect_deadline_minutes: float = Field(default=24 * 60, gt=0, le=30 * 24 * 60)  # then an effect is recorded as failed
    delivered_retention_days: float = Field(default=7, ge=0, le=365)
    shutdown_grace_seconds: float = Field(default=30, ge=0, le=3600)  # SIGTERM: how long a running deploy may finish

    @model_validator(mode="after")
    def _stale_after_beats(self) -> Durability:
        if self.stale_after_seconds < 3 * self.heartbeat_seconds:
            raise ValueError(
                f"stale_after_seconds ({self.stale_after_seconds:g}) must be at least three heartbeats "
                f"(3 × heartbeat_seconds = {3 * self.heartbeat_seconds:g}): one late beat must not look like a dead run"
            )
        return self
