"""`/ops health` in the domain: which services a line means, and how a big fleet is laid out."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from bot.domain.health import service as health
from bot.domain.health.messages import Counts
from bot.domain.health.model import CheckOutcome, HealthReport
from bot.domain.shared.commands import Args
from bot.domain.shared.errors import NotFound, UsageError
from bot.domain.shared.policy import Actor
from tests.support import make_config
from tests.unit.health_fakes import fake_world

CHECKS = {"health": [{"url": "https://x.example.com/health"}]}
CONFIG = make_config(
    services={
        "api": {"environments": {"staging": CHECKS, "production": CHECKS}},
        "web": {"environments": {"staging": {}, "production": CHECKS}},
        "worker": {"environments": {"staging": CHECKS}},
    }
)
NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


def scope(*words: str, flags: frozenset[str] = frozenset()) -> tuple[str, list[tuple[str, str]], list[str]]:
    return fake_world(CONFIG).health.targets(health.parse(Args(words, {}, flags)))


def test_no_arguments_means_the_default_service_everywhere_it_has_checks() -> None:
    assert scope() == ("api", [("api", "staging"), ("api", "production")], [])


def test_no_arguments_and_no_default_service_means_all() -> None:
    service = fake_world(make_config(services=CONFIG.model_dump()["services"], default_service=None)).health
    assert service.targets(health.parse(Args()))[0] == "all services"


def test_all_with_an_environment_checks_every_service_there_and_names_the_unchecked() -> None:
    assert scope("all", "staging") == ("all services in staging", [("api", "staging"), ("worker", "staging")], ["web/staging"])


def test_an_environment_alone_means_all_services_in_it() -> None:
    assert scope("production")[1] == [("api", "production"), ("web", "production")]


def test_an_unknown_service_suggests_the_closest_names() -> None:
    with pytest.raises(NotFound, match=re.escape("Unknown service `wbe`. Did you mean `web`?")):
        scope("wbe")


def test_an_unknown_environment_suggests_the_closest_names() -> None:
    with pytest.raises(NotFound, match="Did you mean `production`"):
        scope("all", "prodution")


def test_too_many_words_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        health.parse(Args(("api", "production", "extra")))


def test_post_makes_the_answer_visible_in_the_channel() -> None:
    service, actor = fake_world(CONFIG).health, Actor("U0DEV")
    reply = service.show(health.parse(Args(("api", "production"), {}, frozenset({"post"}))), actor)
    assert reply.visibility == "in_channel"
    assert service.show(health.parse(Args(("api",))), actor).visibility == "ephemeral"


def report(i: int, status: str) -> HealthReport:
    check = CheckOutcome(
        "/health", f"https://s{i}.example.com/health", status, 12.0, None if status == "healthy" else "status 503 (expected 200)"
    )  # type: ignore[arg-type]
    return HealthReport(f"svc-{i:03d}", "production", status, [check])  # type: ignore[arg-type]


def test_a_big_fleet_shows_every_unhealthy_service_and_folds_the_healthy_ones() -> None:
    reports = [report(i, "failed" if i % 50 == 7 else "healthy") for i in range(200)]
    message = health.overview("all services", reports, [], 2100, NOW)
    assert [g.title for g in message.groups] == [f"svc-{i:03d} · production" for i in (7, 57, 107, 157)]
    assert len(message.folded_healthy) == 196 and message.folded_unhealthy == []
    assert message.counts == Counts(healthy=196, degraded=0, failed=4)


def test_more_unhealthy_services_than_fit_are_listed_by_name() -> None:
    reports = [report(i, "failed") for i in range(60)]
    message = health.overview("all services", reports, [], 10, NOW)
    assert len(message.groups) == health.MAX_GROUPS
    assert message.folded_unhealthy[0] == "svc-040/production" and len(message.folded_unhealthy) == 20


def test_a_small_fleet_is_shown_whole_worst_first() -> None:
    message = health.overview("all", [report(1, "healthy"), report(2, "degraded"), report(3, "failed")], [], 5, NOW)
    assert [g.icon for g in message.groups] == ["❌", "⚠️", "✅"]
