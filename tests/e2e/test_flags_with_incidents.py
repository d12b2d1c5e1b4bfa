"""Flags meet incidents: a kill (and its undo) of a flag of the incident's service lands in its channel and timeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import OpsConfig
from tests.e2e.incident_helpers import declare, posts
from tests.e2e.test_flags_slack import alert, request_in
from tests.flagkit import create_flag_table, flag_row
from tests.support import Bot, eventually, make_config

FLAGS = {"checkout.new-flow": (True, False, 30), "search.semantic": (True, False, 10), "billing.v2": (True, False, 100)}


@pytest.fixture
def app_db(tmp_path: Path) -> str:
    """The application's production flag table (SQLite: the incident side is what is under test here)."""
    url = f"sqlite:///{tmp_path / 'production-app.db'}"
    create_flag_table(url, FLAGS)
    return url


@pytest.fixture
def config(app_db: str) -> OpsConfig:
    provider = {"type": "sql", "databases": {"production": {"url": app_db}}}
    return make_config(flags={"provider": provider, "services": {"checkout.*": "api", "search.*": "web"}})


def test_a_kill_of_a_flag_of_the_incident_service_lands_in_its_channel_and_timeline_besides_the_alerts_channel(
    opsbot: Bot, app_db: str
) -> None:
    channel = declare(opsbot)  # P1 for api

    reply = opsbot.command('flag kill checkout.new-flow --reason "payment errors since 14:00"', user="U0DEV2")
    assert "@U0DEV2 killed *checkout.new-flow* in *production*" in reply.seen()
    assert flag_row(app_db, "checkout.new-flow") == (True, True, 30)
    loud = alert(opsbot, "checkout.new-flow")
    assert "*Reason:* payment errors since 14:00" in loud.seen()
    killed = eventually(lambda: posts(opsbot, channel.id, "flag.killed"))
    assert len(killed) == 1 and killed[0].buttons() == []  # Undo stays on the alert, where approvals are asked
    assert (
        "🚩 *flag.killed* · api/production · Flag checkout.new-flow killed in production: payment errors since 14:00"
        in killed[0].seen()
    )
    assert "by @U0DEV2" in killed[0].seen()
    timeline = opsbot.command("incident timeline", channel=channel.id).seen()
    assert "*Service event* · @U0DEV2 · flag.killed · api/production · Flag checkout.new-flow killed in production" in timeline

    opsbot.click(loud, "Undo", "U0DEV")
    request = request_in(opsbot, "C0ALERTS", "Unkill checkout.new-flow in production")
    opsbot.click(request, "Approve", "U0APPROVER1")
    opsbot.click(request, "Approve", "U0APPROVER2")
    unkilled = eventually(lambda: posts(opsbot, channel.id, "flag.unkilled"))
    assert "by @U0DEV" in unkilled[0].seen() and flag_row(app_db, "checkout.new-flow") == (True, False, 30)

    opsbot.command('incident resolve "Flag killed, fix deployed"', channel=channel.id)
    draft = opsbot.command("incident postmortem 1").seen()
    changes = draft.split("## Deploys, rollbacks and flag changes during the incident", 1)[1].split("## Root cause", 1)[0]
    assert "flag.killed · api/production · Flag checkout.new-flow killed in production: payment errors" in changes
    assert "flag.unkilled · api/production · Flag checkout.new-flow unkilled in production" in changes


def test_kills_of_flags_of_other_services_or_of_none_stay_out_of_the_incident(opsbot: Bot) -> None:
    channel = declare(opsbot)  # P1 for api
    opsbot.command('flag kill search.semantic --reason "slow search"')  # a web flag
    opsbot.command('flag kill billing.v2 --reason "double charges"')  # no service
    assert alert(opsbot, "search.semantic") and alert(opsbot, "billing.v2")  # announced where kills always are
    opsbot.command('flag kill checkout.new-flow --reason "payment errors"')  # events are published before the reply: a marker
    eventually(lambda: posts(opsbot, channel.id, "flag.killed"))
    assert [m.seen().splitlines()[0] for m in posts(opsbot, channel.id, "flag.")] == [
        "🚩 flag.killed · api: Flag checkout.new-flow killed in production: payment errors"
    ]
    timeline = opsbot.command("incident timeline", channel=channel.id).seen()
    assert "search.semantic" not in timeline and "billing.v2" not in timeline
