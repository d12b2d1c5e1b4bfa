"""The durability stage: opsbot as deployed, with faults a test can cause, and the promises it must keep after them.

The app (the `opsbot serve` side) runs in the test process; real `opsbot worker` processes run its jobs,
deliver its outbox and run the reconciler. Both reach Redis and PostgreSQL through ``TcpProxy``s
(``stage.redis_proxy.cut()``), Slack is the emulator (``stage.emulator.fail(...)``), and deploys of `api`
are run by ``tests/programs/fake_deploy.py``, which records every run's start and end in
``runs.jsonl``. The test's own reads (``stage.deploys()``, the audit log) go to PostgreSQL directly, not
through the proxy, so a cut never blinds the assertions.

``stage.assert_kept()`` checks what issue "Durable operations" promises once faults end: every deploy
over, exactly one outcome message per deploy (by the message key opsbot attaches as metadata), no message
posted twice, at most one provider run per deploy, never two runs of one target at once, no lock held,
and the audit chain intact.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from bot.adapters.redis.connection import connect
from bot.adapters.sql.audit import SqlAuditLog
from bot.adapters.sql.engine import create_db_engine
from bot.adapters.sql.unit_of_work import SqlUnitOfWork
from bot.config import OpsConfig
from bot.console.slack_emulator import Posted, SlackEmulator
from bot.domain.deploys.model import Deploy, DeployState
from bot.domain.shared.ports import SystemClock
from tests.deploy_kit import ServiceDouble, deploy_config, overlapping, provider_runs
from tests.faults import TcpProxy, WorkerProcess
from tests.support import Bot, eventually

DEPLOYS = "C0DEPLOYS"
READY = "Listening on"  # RQ's line once a worker takes jobs
FINAL = {DeployState.SUCCEEDED, DeployState.FAILED, DeployState.LOCK_LOST, DeployState.CANCELLED, DeployState.ROLLED_BACK}
FINAL_NAMES = {s.value for s in FINAL} | {"rejected", "expired", "unknown"}


def stage_config(state_dir: Path, services: ServiceDouble, *, seconds: float = 3) -> OpsConfig:
    """`api` deployed by fake_deploy.py taking ``seconds``; short heartbeats and reconciler rounds (tests/support)."""
    return deploy_config(state_dir, services.base_url, command_args=("--sleep", str(seconds)))


@dataclass
class Stage:
    bot: Bot
    emulator: SlackEmulator
    redis_proxy: TcpProxy
    pg_proxy: TcpProxy
    state_dir: Path
    spawn: Callable[..., WorkerProcess]
    tmp_path: Path
    pg_url: str
    workers: list[WorkerProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._engine = create_db_engine(self.pg_url)

    # ----- workers -----
    def worker(self, name: str | None = None) -> WorkerProcess:
        """A real `opsbot worker` on this stage (through both proxies), taking jobs once this returns."""
        env = self.bot.environment(self.tmp_path / "opsbot.yml")  # the app's URLs: already through the proxies
        worker = self.spawn(env, name or f"worker-{len(self.workers) + 1}")
        worker.wait_for_log(READY, timeout=30)
        self.workers.append(worker)
        return worker

    # ----- what happened -----
    def deploys(self) -> list[Deploy]:
        """Every deploy and rollback, newest first, read straight from PostgreSQL."""
        with SqlUnitOfWork(self._engine) as uow:
            return list(uow.deploys.history(None, None, 500))

    def deploy(self, deploy_id: str) -> Deploy:
        with SqlUnitOfWork(self._engine) as uow:
            found = uow.deploys.get(deploy_id)
        assert found is not None, deploy_id
        return found

    def keyed(self, key: str) -> list[Posted]:
        """Messages opsbot posted under ``key`` (the key travels in the message's metadata)."""
        return [m for m in self.emulator.visible() if ((m.metadata or {}).get("event_payload") or {}).get("key") == key]

    def outcome(self, deploy_id: str, timeout: float = 30) -> Posted:
        """The one outcome message of a deploy, once posted."""
        return eventually(lambda: next(iter(self.keyed(f"deploy:{deploy_id}:outcome")), None), timeout=timeout)

    def audit(self) -> SqlAuditLog:
        return SqlAuditLog(self._engine, SystemClock())

    def audit_actions(self) -> list[tuple[str, str, str]]:
        return [(r["actor"], r["action"], r["outcome"]) for r in self.audit().rows()]

    def over(self, timeout: float = 60) -> list[Deploy]:
        """Wait until every deploy is in a final state; returns them."""
        return eventually(lambda: (d := self.deploys()) and all(x.state.value in FINAL_NAMES for x in d) and d, timeout=timeout)

    # ----- the promises -----
    def assert_kept(self, timeout: float = 30) -> list[Deploy]:
        """Every promise of issue "Durable operations", after the faults have ended."""
        deploys = self.over(timeout)
        for deploy in deploys:
            if deploy.state.value not in ("rejected", "expired", "cancelled") or deploy.started_at:
                # One ending: its outcome, or (ended before it started, e.g. its lock lapsed) "did not start".
                def ending(d: Deploy = deploy) -> list[Posted]:
                    return self.keyed(f"deploy:{d.id}:outcome") + self.keyed(f"deploy:{d.id}:not-started")

                eventually(ending, timeout=timeout)
                assert len(ending()) == 1, f"{deploy.id} ending announced more than once"
        keys = Counter(((m.metadata or {}).get("event_payload") or {}).get("key") for m in self.emulator.visible() if m.metadata)
        assert [k for k, n in keys.items() if n > 1] == [], "a message was posted twice"
        runs = provider_runs(self.state_dir)
        per_deploy = Counter(r.deploy_id for r in runs)
        assert [d for d, n in per_deploy.items() if n > 1] == [], f"the provider was called twice: {per_deploy}"
        assert overlapping(runs) == [], "two provider runs of one target overlapped"
        eventually(lambda: self.bot.services.adapters.locks.held() == [], timeout=timeout)
        assert self.audit().verify().ok
        return deploys

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self._engine.dispose()


@pytest.fixture
def stage(
    emulator: SlackEmulator,
    pg_url: str,
    redis_url: str,
    redis_prefix: str,
    config: OpsConfig,
    redis_proxy: TcpProxy,
    pg_proxy: TcpProxy,
    state_dir: Path,
    spawn_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
) -> Iterator[Stage]:
    """The app through the proxies (jobs on RQ), no worker yet: ``stage.worker()`` starts one."""
    proxied_redis = redis_proxy.url_for(redis_url)
    bot = Bot(
        emulator=emulator,
        db_url=pg_proxy.url_for(pg_url),
        redis_client=connect(proxied_redis),
        prefix=redis_prefix,
        config=config,
        redis_url=proxied_redis,
    )
    built = Stage(bot, emulator, redis_proxy, pg_proxy, state_dir, spawn_worker, tmp_path, pg_url)
    yield built
    built.close()


def direct_redis(redis_url: str) -> redis.Redis:
    """A Redis client that does not go through the proxy (for the test's own reads)."""
    return connect(redis_url)
