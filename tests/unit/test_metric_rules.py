"""Metric rules of health watches: the runbook's form parsed and checked, and the pure fire/recover state machine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.config import ConfigError, parse_config
from bot.config.metric_rules import parse_rule
from bot.domain.health.metric_alerts import rule_summary
from bot.domain.health.metric_rules import RuleState, step
from bot.domain.shared.metrics import shown
from tests.support import config_data

T0 = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
RULE = parse_rule("error_rate > 0.05 for 5m -> P0")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_the_runbooks_form_parses_into_metric_threshold_window_and_severity() -> None:
    assert (RULE.metric, RULE.op, RULE.threshold, RULE.for_seconds, RULE.severity) == ("error_rate", ">", 0.05, 300, "P0")
    arrow = parse_rule("latency_p95  >=  1000 for 90s → P1")
    assert (arrow.op, arrow.threshold, arrow.for_seconds, arrow.text) == (">=", 1000.0, 90, "latency_p95 >= 1000 for 90s -> P1")
    assert parse_rule("availability < 0.99 for 10s -> P2").breached(0.98)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("error_rate > 5% for 5m -> P0", "is not a metric rule like 'error_rate > 0.05 for 5m -> P0'"),
        ("error_rate > 0.05 -> P0", "is not a metric rule"),
        ("error_rate > 0.05 for 0s -> P0", "must be longer than zero"),
        ("error_rate > 0.05 for 2d -> P0", "longer than the maximum"),
        ("Error-Rate > 0.05 for 5m -> P0", "is not a metric rule"),
    ],
)
def test_a_malformed_rule_is_refused_saying_what_a_rule_looks_like(text: str, says: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_rule(text)
    assert says in str(raised.value)


def watched(rules: list[str], metrics: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    data = config_data()
    data["prometheus"] = {"url": "http://127.0.0.1:9"}
    data["services"]["api"] = {
        "environments": {
            "production": {
                "health": [{"url": "http://127.0.0.1:9/health"}],
                "metrics": metrics if metrics is not None else [{"name": "error_rate", "query": "x", "critical": 0.05}],
            }
        }
    }
    data["health"] = {"watches": [{"services": ["api"], "environments": ["production"], "metric_rules": rules}]}
    return data


def test_check_config_accepts_rules_naming_a_defined_metric_and_a_known_severity() -> None:
    config = parse_config(watched(["error_rate > 0.05 for 5m -> p0"]))
    [rule] = config.health.watches[0].rules
    assert rule.metric == "error_rate"


def test_check_config_names_the_rule_whose_metric_or_severity_does_not_exist() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(watched(["latency_p95 > 500 for 5m -> P0", "error_rate > 0.05 for 5m -> P9"]))
    errors = raised.value.errors
    assert (
        "health.watches[0].metric_rules[0]: api in production defines no metric 'latency_p95' under "
        "services.api.environments.production.metrics (defined: error_rate)"
    ) in errors
    assert any(e.startswith("health.watches[0].metric_rules[1]: unknown severity 'P9'") for e in errors)


def test_check_config_refuses_a_malformed_rule_with_its_path() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(watched(["error_rate above 0.05"]))
    assert raised.value.errors[0].startswith("health.watches[0].metric_rules: ")


def test_a_rule_fires_once_when_it_has_held_for_its_window_and_recovers_once() -> None:
    state, events = RuleState(), []
    readings = [0.01, 0.10, 0.10, 0.12, 0.10, 0.11, 0.02, 0.01]
    for i, value in enumerate(readings):
        state, event = step(state, RULE, value, "", at(i * 150))  # 0.10 first read at 150 s; 300 s later is 450 s
        events.append(event.kind if event else None)
    assert events == [None, None, None, "fire", None, None, "recover", None]
    assert state.firing_since is None and state.value == 0.01


def test_a_dip_below_the_threshold_restarts_the_window() -> None:
    state, _ = step(RuleState(), RULE, 0.10, "", at(0))
    state, _ = step(state, RULE, 0.01, "", at(200))
    state, event = step(state, RULE, 0.10, "", at(310))
    assert event is None and state.pending_since == at(310)


def test_an_unknown_reading_restarts_a_pending_window_and_neither_fires_nor_recovers() -> None:
    state, _ = step(RuleState(), RULE, 0.10, "", at(0))
    state, event = step(state, RULE, None, "Prometheus at http://x is unreachable (ConnectError)", at(400))
    assert event is None and state.pending_since is None and "unreachable" in state.unknown
    state, _ = step(RuleState(firing_since=at(0), alert_id="a1"), RULE, None, "the query returned no series", at(400))
    assert state.firing_since == at(0) and state.alert_id == "a1"  # still firing: no number says otherwise


def test_the_watch_list_shows_each_rules_status_with_the_unknown_reason() -> None:
    config = parse_config(watched(["error_rate > 0.05 for 5m -> P0"]))
    watch = config.health.watches[0]
    state, _ = step(RuleState(), RULE, None, "the query returned no series", at(0))
    assert rule_summary(watch, {RULE.key: state.to_dict()}) == (
        " · `error_rate > 0.05 for 5m -> P0`: unknown (the query returned no series)"
    )
    assert RuleState.from_dict(state.to_dict()) == state


def test_values_are_shown_in_the_metrics_unit() -> None:
    assert (shown(0.102, "ratio"), shown(812.4, "ms"), shown(3.5, "percent")) == ("10.2 %", "812 ms", "3.5 %")
