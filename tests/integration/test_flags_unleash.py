"""The `unleash` flag provider against a real Unleash server, checked with Unleash's official Python client.

Faults (500s, slowness) are injected by a small proxy (tests.flagkit.FaultProxy) in front of the real server.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest

from bot.adapters.flag_providers.unleash import UnleashFlagProvider
from bot.config import UnleashFlagProvider as UnleashConfig
from bot.domain.flags.model import FlagState
from bot.domain.shared.errors import OpsError, Unavailable
from tests.flagkit import AppSees, FaultProxy, UnleashAdmin
from tests.support import eventually

ENVIRONMENTS = {"staging": "development", "production": "production"}


@pytest.fixture(scope="module")
def admin(unleash_url: str) -> UnleashAdmin:
    return UnleashAdmin(unleash_url)


@pytest.fixture(scope="module")
def app_sees(unleash_url: str, admin: UnleashAdmin) -> AppSees:
    return AppSees(unleash_url, admin.client_token("production"))


@pytest.fixture
def proxy(unleash_url: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(unleash_url)
    yield proxy
    proxy.stop()


def unleash(url: str, timeout: float = 15) -> UnleashFlagProvider:
    # Generous, so a busy machine does not fail tests that are not about timeouts (those pass their own).
    return UnleashFlagProvider(UnleashConfig(type="unleash", url=url, environments=ENVIRONMENTS, timeout_seconds=timeout))


def test_reads_environment_state_and_flexible_rollout(unleash_url: str, admin: UnleashAdmin) -> None:
    name = admin.create(production=True, rollout=30)
    flags = unleash(unleash_url)
    assert flags.state(name, "production") == FlagState(True, False, 30)
    assert flags.state(name, "staging") == FlagState(False, False, 30)
    assert flags.state(name + "-nope", "production") is None
    listed = flags.list_flags(["staging", "production"], name, 5)
    assert listed == {name: {"staging": FlagState(False, False, 30), "production": FlagState(True, False, 30)}}


def test_turning_off_is_what_the_application_sees(unleash_url: str, admin: UnleashAdmin, app_sees: AppSees) -> None:
    name = admin.create(production=True)
    eventually(lambda: app_sees.enabled_share(name) == 1.0, timeout=10)
    flags = unleash(unleash_url)
    assert flags.compare_and_set(name, "production", FlagState(True, False, 100), FlagState(False, False, 100))
    eventually(lambda: app_sees.enabled_share(name) == 0.0, timeout=10)  # Unleash refreshes what clients get every second
    assert admin.environment(name, "development")["enabled"] is False  # staging untouched


def test_rollout_percentage_is_what_the_application_sees(unleash_url: str, admin: UnleashAdmin, app_sees: AppSees) -> None:
    name = admin.create(production=True, rollout=10)
    flags = unleash(unleash_url)
    assert flags.compare_and_set(name, "production", FlagState(True, False, 10), FlagState(True, False, 60))
    # The application's SDK refreshes on its own schedule: until it does, it still sees the 10 % it had.
    share = eventually(lambda: (seen := app_sees.enabled_share(name, users=2000)) > 0.3 and seen, timeout=15)
    assert 0.55 < share < 0.65, share
    assert flags.state(name, "production") == FlagState(True, False, 60)


def test_rollout_on_a_flag_without_strategies_adds_one_flexible_rollout(unleash_url: str, admin: UnleashAdmin) -> None:
    name = admin.create()
    flags = unleash(unleash_url)
    assert admin.environment(name, "production")["strategies"] == []
    assert flags.state(name, "production") == FlagState(False, False, 100)
    assert flags.compare_and_set(name, "production", FlagState(False, False, 100), FlagState(False, False, 20))
    (strategy,) = admin.environment(name, "production")["strategies"]
    assert strategy["name"] == "flexibleRollout" and strategy["parameters"]["rollout"] == "20"


def test_custom_strategies_read_as_no_single_percentage(unleash_url: str, admin: UnleashAdmin) -> None:
    name = admin.create(production=True, rollout=50)
    admin.http.post(
        f"{admin.base}/{name}/environments/production/strategies", json={"name": "default", "parameters": {}, "constraints": []}
    ).raise_for_status()
    assert unleash(unleash_url).state(name, "production") == FlagState(True, False, None)


def test_stale_compare_and_set_writes_nothing(unleash_url: str, admin: UnleashAdmin) -> None:
    name = admin.create(production=True, rollout=10)
    admin.switch(name, "production", False)  # changed in Unleash's UI since we read it
    flags = unleash(unleash_url)
    assert not flags.compare_and_set(name, "production", FlagState(True, False, 10), FlagState(True, False, 30))
    assert flags.state(name, "production") == FlagState(False, False, 10)


def test_a_500_on_the_write_is_unavailable_and_nothing_is_half_applied(admin: UnleashAdmin, proxy: FaultProxy) -> None:
    name = admin.create(production=True, rollout=10)
    proxy.fail("POST", f"{name}/environments/production/off", status=500)
    with pytest.raises(Unavailable, match=r"Unleash is unreachable right now; nothing was changed. \(HTTP 500\)"):
        unleash(proxy.url).compare_and_set(name, "production", FlagState(True, False, 10), FlagState(False, False, 10))
    assert admin.environment(name, "production")["enabled"] is True


def test_a_slow_unleash_times_out_as_unavailable(admin: UnleashAdmin, proxy: FaultProxy) -> None:
    name = admin.create(production=True)
    proxy.fail("GET", name, delay=30)  # without a working timeout this test would wait, then read the flag fine
    with pytest.raises(Unavailable, match=re.escape("no answer within 0.5s")):
        unleash(proxy.url, timeout=0.5).state(name, "production")


def test_a_write_whose_answer_is_lost_is_confirmed_by_reading_again(admin: UnleashAdmin, proxy: FaultProxy) -> None:
    name = admin.create(production=True)
    proxy.fail("POST", f"{name}/environments/production/off", after=10)  # applied, but the answer comes too late
    flags = unleash(proxy.url, timeout=3)  # the reads around the write answer well within it, even on a busy machine
    assert flags.compare_and_set(name, "production", FlagState(True, False, 100), FlagState(False, False, 100))
    assert admin.environment(name, "production")["enabled"] is False


def test_a_lost_answer_and_a_lost_server_is_reported_as_unknown(admin: UnleashAdmin, proxy: FaultProxy) -> None:
    name = admin.create(production=True)
    proxy.fail("POST", f"{name}/environments/production/off", delay=10)
    proxy.fail(
        "GET", f"{name}/environments/production", skip=1, delay=10
    )  # the read before the write answers; the one after hangs
    with pytest.raises(OpsError, match="may or may not have happened"):
        unleash(proxy.url, timeout=3).compare_and_set(
            name, "production", FlagState(True, False, 100), FlagState(False, False, 100)
        )


def test_an_unreachable_unleash_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(Unavailable, match="Unleash is unreachable"):
        unleash(f"http://127.0.0.1:{port}").state("x", "production")


def test_a_required_token_that_is_not_set_is_named() -> None:
    config = UnleashConfig(type="unleash", url="http://127.0.0.1:9", token_env="OPSBOT_TEST_UNLEASH_TOKEN")
    with pytest.raises(Unavailable, match="OPSBOT_TEST_UNLEASH_TOKEN"):
        UnleashFlagProvider(config, environ={}).state("x", "production")
