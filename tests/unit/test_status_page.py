"""The status page's rules without stores: watch levels → service state, its config, the public text, escaping."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.adapters.status_page import StatusPageRenderer
from bot.config import ConfigError, parse_config
from bot.domain.incidents.common import public_text_problem
from bot.domain.status.model import PublicIncident, PublicUpdate, ServiceState, ServiceStatus, StatusSnapshot, state_of
from tests.support import config_data, make_config

AT = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("levels", "state"),
    [
        (["ok", "down"], ServiceState.OUTAGE),
        (["warning", "down", None], ServiceState.OUTAGE),
        (["ok", "warning"], ServiceState.DEGRADED),
        (["ok", None], ServiceState.OPERATIONAL),
        (["ok"], ServiceState.OPERATIONAL),
        ([None], ServiceState.UNKNOWN),
        ([], ServiceState.UNKNOWN),
    ],
)
def test_the_worst_watched_environment_decides_a_services_state(levels: list[str | None], state: ServiceState) -> None:
    assert state_of(levels) is state


def test_the_page_is_off_by_default_and_names_only_known_services() -> None:
    assert make_config().status_page.enabled is False
    with pytest.raises(ConfigError) as caught:
        parse_config(config_data(status_page={"enabled": True, "services": ["api", "payments"], "environments": ["prod"]}))
    assert "status_page.services: unknown service 'payments' (known: api, web, worker)" in caught.value.errors
    assert "status_page.environments: unknown environment 'prod' (known: staging, production)" in caught.value.errors


def test_a_public_text_may_not_name_people_channels_or_groups() -> None:
    assert public_text_problem("We are rolling back.") is None
    for text in ("Ask <@U0DEV>", "See <#C0OPS|ops>", "<!subteam^S0SRE|@sre> is on it", "<!here>"):
        assert "names a person, channel or group" in str(public_text_problem(text)), text
    assert "under 1000 characters" in str(public_text_problem("x" * 1001))


def test_the_overall_state_is_the_worst_service_state() -> None:
    def page(*states: ServiceState) -> StatusSnapshot:
        return StatusSnapshot("t", AT, tuple(ServiceStatus(f"s{i}", s) for i, s in enumerate(states)), ())

    assert page(ServiceState.OPERATIONAL, ServiceState.UNKNOWN).overall is ServiceState.UNKNOWN
    assert page(ServiceState.UNKNOWN, ServiceState.DEGRADED).overall is ServiceState.DEGRADED
    assert page(ServiceState.DEGRADED, ServiceState.OUTAGE).headline == "Some services are down"
    assert page().headline == "All systems operational"


def test_public_text_is_escaped_in_the_html() -> None:
    hostile = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'
    snapshot = StatusSnapshot(
        "Status <b>",
        AT,
        (ServiceStatus("api", ServiceState.DEGRADED, AT),),
        (PublicIncident("INC-1", ("api",), AT, (PublicUpdate(AT, "identified", hostile),)),),
    )
    html, headers = StatusPageRenderer().html(snapshot)
    text = html.decode()
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt;" in text
    assert "<img" not in text and "<b>" not in text and text.count("<script>") == 1
    assert dict(headers)["X-Content-Type-Options"] == "nosniff"
