"""Durable operations when a worker dies or Slack fails: real `opsbot worker`s, the emulator answering 429/500.

Cases 5 and 6 of issue "Durable operations", and SIGTERM during a deploy (a rolling restart).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bot.config import OpsConfig
from tests.deploy_kit import ServiceDouble, provider_runs, services_double, state_dir  # noqa: F401 - fixtures
from tests.durability import Stage, stage, stage_config  # noqa: F401 - fixtures
from tests.faults import pg_proxy, redis_proxy, spawn_worker  # noqa: F401 - fixtures
from tests.support import eventually


@pytest.fixture
def config(state_dir: Path, services_double: ServiceDouble) -> OpsConfig:
    return stage_config(state_dir, services_double, seconds=3)


def test_slack_429s_then_500s_during_a_deploy_delay_its_messages_but_post_each_once(stage: Stage) -> None:
    stage.worker()
    stage.emulator.fail("chat.postMessage", "ratelimited", times=3, status=429, retry_after=2)
    stage.emulator.fail("chat.postMessage", "internal_error", times=2, status=500)
    reply = stage.bot.command("deploy v2.0.0 to staging").seen()
    assert "queued" in reply
    [deploy] = stage.deploys()
    outcome = stage.outcome(deploy.id, timeout=40)
    assert "✅ Deployment of v2.0.0 to staging completed" in outcome.seen()
    [started] = stage.keyed(f"deploy:{deploy.id}:started")
    assert "🚀 Starting deployment of v2.0.0 to staging" in started.seen()
    assert float(started.ts) < float(outcome.ts)  # in the order they happened
    assert len(stage.emulator.calls_to("chat.postMessage")) >= 6  # five refusals, then each message once
    stage.assert_kept()
    assert stage.deploy(deploy.id).state.value == "succeeded"


def test_a_worker_killed_mid_deploy_leaves_no_orphan_and_the_reconciler_announces_the_outcome_once(stage: Stage) -> None:
    first = stage.worker()
    stage.bot.command("deploy v2.0.0 to staging")
    [deploy] = stage.deploys()
    eventually(lambda: provider_runs(stage.state_dir), timeout=20)  # the deploy program is running
    first.kill()  # SIGKILL, like the OOM killer
    eventually(lambda: all(run.ended is not None or not _alive(run.pid) for run in provider_runs(stage.state_dir)), timeout=10)
    stage.worker()  # a new worker at once

    outcome = stage.outcome(deploy.id, timeout=40)
    seen = outcome.seen()
    assert "v2.0.0" in seen and "staging" in seen
    settled = stage.deploy(deploy.id)
    assert settled.state.value in ("succeeded", "failed")
    assert "Its worker stopped (no heartbeat since" in seen and "so opsbot checked the service to decide" in seen
    told = eventually(lambda: [m for m in stage.emulator.visible() if m.channel == "D0DEV" and deploy.id in m.seen()])
    assert len(told) == 1 and f"ended: {settled.state.value}" in told[0].seen()  # the requester hears what happened
    assert len(provider_runs(stage.state_dir)) == 1  # the reconciler verified; it did not deploy again
    stage.assert_kept()
    assert first.descendants() == []  # nothing the killed worker started is still running


def _alive(pid: int | None) -> bool:
    import os

    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigterm_mid_deploy_hands_the_run_over_within_the_grace_period_and_the_reconciler_finishes_it(
    stage: Stage,
) -> None:
    leaving = stage.worker()
    stage.bot.command("deploy v2.0.0 to staging")
    [deploy] = stage.deploys()
    eventually(lambda: provider_runs(stage.state_dir), timeout=20)
    started = time.monotonic()
    code = leaving.terminate(timeout=20)  # a rolling restart of opsbot
    assert code is not None and time.monotonic() - started < 2 + 8  # the grace (2 s here), not the job's timeout
    assert "handed over to the reconciler" in leaving.log_text()
    stage.worker()

    outcome = stage.outcome(deploy.id, timeout=40)
    assert "Its worker stopped (no heartbeat since its shutdown)" in outcome.seen()
    assert len(provider_runs(stage.state_dir)) == 1
    stage.assert_kept()


def test_an_incident_declared_while_slack_answers_429_gets_its_status_message_from_the_worker(stage: Stage) -> None:
    stage.worker()
    stage.emulator.fail("chat.postMessage", "ratelimited", times=3, status=429, retry_after=1)
    reply = stage.bot.command("incident declare P1 Checkout errors --service api").seen()
    assert "INC-1 is declared; its status message is still being posted" in reply and "nothing was changed" not in reply
    [channel] = [c for c in stage.emulator.channels.values() if c.name.startswith("inc-")]
    status = eventually(lambda: stage.keyed("incident:1:status"), timeout=20)  # posted by the worker's deliverer
    assert len(status) == 1 and "🚨 INCIDENT: api - Checkout errors" in status[0].seen()
    eventually(lambda: channel.pins == [status[0].ts], timeout=10)
    assert len(eventually(lambda: stage.keyed("incident:1:summary"), timeout=10)) == 1
    eventually(lambda: stage.bot.services.outbox.listing() == [], timeout=10)  # reminders and escalation queued too
    # one status message, no twin (and the "what changed" list of the declared service beside it)
    assert [m.metadata["event_payload"]["key"] for m in stage.emulator.in_channel(channel.id)] == [  # type: ignore[index]
        "incident:1:status",
        "incident:1:what-changed",
    ]


def test_scheduled_jobs_run_again_soon_after_a_redis_outage_killed_rqs_scheduler(stage: Stage) -> None:
    worker = stage.worker()
    with stage.redis_proxy.down(seconds=2):
        pass
    eventually(lambda: "Redis" in worker.log_text() or "rror" in worker.log_text(), timeout=10)
    reply = stage.bot.command('lock api staging for=2s --reason "db migration"', user="U0ADMIN").seen()
    assert "db migration" in reply
    # The hold's end is a scheduled job: RQ's scheduler must be back to run it (it was not for 10 minutes).
    ended = eventually(lambda: [m for m in stage.emulator.in_channel("C0DEPLOYS") if "has ended" in m.seen()], timeout=45)
    assert len(ended) == 1 and worker.alive
