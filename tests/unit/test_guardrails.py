"""Metric guardrails with fakes: the config, the judgement of one reading, and verification rounds over a window."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from bot.config import ConfigError, OpsConfig, parse_config
from bot.config.metrics import MetricGuardrail
from bot.domain.deploys import guardrails, verification
from bot.domain.deploys.guardrails import baseline_query, judge
from bot.domain.deploys.messages import DeployFailed, DeploySucceeded
from bot.domain.health.model import HealthReport
from bot.domain.shared.metrics import MetricUnreadable, shown
from bot.render import Renderer
from tests.support import FrozenClock, config_data

ERRORS = 'sum(rate(http_requests_total{service="{service}",status=~"5.."}[1m])) / sum(rate(http_requests_total{service="{service}"}[1m]))'
P95 = 'histogram_quantile(0.95, sum by (le) (rate(latency_bucket{service="{service}",env="{environment}"}[1m]))) * 1000'


def guardrail(**kw: Any) -> MetricGuardrail:
    values: dict[str, Any] = {"name": "error_rate", "query": ERRORS, "unit": "ratio", "warn": 0.01, "critical": 0.05}
    return MetricGuardrail(**{**values, **kw})


class FakeMetrics:
    """Answers by query: a number, a MetricUnreadable to raise, or a list of values read one per round."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, datetime | None]] = []

    def read(self, query: str, *, at: datetime | None = None) -> float:
        self.asked.append((query, at))
        for key, answer in self.answers.items():
            if key in query and (key.startswith("avg_over_time") or not query.startswith("avg_over_time")):
                if isinstance(answer, list):
                    answer = answer.pop(0) if len(answer) > 1 else answer[0]
                if isinstance(answer, Exception):
                    raise answer
                return float(answer)
        raise MetricUnreadable("the query returned no series")


class Healthy:
    def check(self, service: str, environment: str) -> HealthReport:
        return HealthReport(service, environment, "healthy", [], "v2")


def config(metrics: list[dict[str, Any]], **production: Any) -> OpsConfig:
    data = config_data()
    data["prometheus"] = {"url": "http://127.0.0.1:9090", "token_env": "PROMETHEUS_TOKEN", "timeout_ms": 2000}
    data["environments"]["production"].update(production)
    data["services"]["api"] = {"environments": {"production": {"health": [{"url": "http://svc.test/h"}], "metrics": metrics}}}
    data["deploys"] = {"watch_seconds": 30, "check_every_seconds": 10}
    return parse_config(data)


ERROR_RATE = {"name": "error_rate", "query": ERRORS, "unit": "ratio", "warn": 0.01, "critical": 0.05}
LATENCY = {
    "name": "latency_p95",
    "query": P95,
    "unit": "ms",
    "warn": 500,
    "critical": 1000,
    "max_increase_percent": 50,
    "baseline_window": "30m",
}


def watch(cfg: OpsConfig, metrics: FakeMetrics, since: datetime | None = None) -> verification.Verdict:
    clock = FrozenClock()
    return verification.watch(
        cfg,
        clock,
        Healthy(),
        "api",
        "production",
        "v2",
        sleep=lambda s: clock.advance(seconds=s),
        metrics=metrics,
        since=since or clock.now(),
    )


# ----- config -----


def test_the_issue_example_config_parses_with_its_runbook_thresholds() -> None:
    cfg = config([ERROR_RATE, LATENCY], auto_rollback=False)
    (errors, latency) = cfg.services["api"].environments["production"].metrics
    assert (errors.warn, errors.critical, errors.unit) == (0.01, 0.05, "ratio")
    assert latency.baseline_seconds == 1800 and latency.max_increase_percent == 50
    assert cfg.environments["production"].on_unknown == "warn" and cfg.environments["production"].auto_rollback is False
    assert ("prometheus.token_env", "PROMETHEUS_TOKEN") in cfg.secret_variables()


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"critical": 0.001}, "critical (0.001) must not be below warn (0.01)"),
        ({"warn": None, "critical": None}, "give at least one of warn, critical or max_increase_percent"),
        ({"baseline_window": "30 minutes"}, "is not a duration like 30m"),
        ({"baseline_window": "30d"}, "longer than the maximum of 7d"),
        ({"unit": "bytes"}, "Input should be 'ratio', 'percent', 'ms' or 's'"),
        ({"name": "Error Rate"}, "is not a metric name"),
        ({"max_increase_percent": 0}, "greater than 0"),
    ],
)
def test_a_bad_guardrail_is_refused_with_its_path(change: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        config([{**ERROR_RATE, **change}])
    assert any(e.startswith("services.api.environments.production.metrics") and expected in e for e in raised.value.errors)


def test_a_metric_named_twice_or_without_prometheus_is_refused() -> None:
    with pytest.raises(ConfigError, match="given more than once: error_rate"):
        config([ERROR_RATE, ERROR_RATE])
    data = config_data()
    data["services"]["api"] = {"environments": {"production": {"metrics": [ERROR_RATE]}}}
    with pytest.raises(
        ConfigError, match=r"services.api.environments.production.metrics: guardrails need a `prometheus:` section"
    ):
        parse_config(data)
    data["environments"]["production"]["on_unknown"] = "ignore"
    with pytest.raises(ConfigError, match=r"environments\.production\.on_unknown: Input should be 'warn' or 'fail'"):
        parse_config(data)


def test_placeholders_are_filled_and_escaped_for_a_promql_label_value() -> None:
    g = guardrail(query='up{service="{service}",env="{environment}"}')
    assert g.promql("api", "production") == 'up{service="api",env="production"}'
    assert g.promql('a"b\\c', "x") == 'up{service="a\\"b\\\\c",env="x"}'


# ----- one reading -----


def test_values_are_shown_in_their_unit_a_ratio_as_a_percentage() -> None:
    assert shown(0.102, "ratio") == "10.2 %"
    assert shown(0.0041, "ratio") == "0.41 %"
    assert shown(812.34, "ms") == "812 ms"
    assert shown(1.5, "s") == "1.5 s"
    assert shown(12.345, "percent") == "12.3 %"
    assert shown(0, "ms") == "0 ms"


def test_above_critical_is_critical_naming_value_threshold_and_baseline() -> None:
    reading = judge(guardrail(max_increase_percent=50), 0.1, 0.08)
    assert reading.status == "critical"
    assert reading.line() == "error_rate 10 % (above critical 5 %; baseline 8 %)"


def test_a_rise_over_max_increase_percent_of_the_baseline_is_critical_even_below_critical() -> None:
    reading = judge(guardrail(name="latency_p95", unit="ms", warn=500, critical=1000, max_increase_percent=50), 180, 100)
    assert reading.status == "critical"
    assert reading.line() == "latency_p95 180 ms (above the baseline +50 % (150 ms); baseline 100 ms)"
    assert judge(guardrail(unit="ms", warn=500, critical=1000, max_increase_percent=50), 149, 100).status == "ok"


def test_warn_is_noted_and_ok_is_ok() -> None:
    assert judge(guardrail(), 0.02, None).status == "warn"
    assert judge(guardrail(), 0.02, None).line() == "error_rate 2 % (above warn 1 %)"
    assert judge(guardrail(), 0.005, None).line() == "error_rate 0.5 %"


def test_a_zero_baseline_leaves_only_the_absolute_thresholds() -> None:
    reading = judge(guardrail(max_increase_percent=50), 0.004, 0.0)
    assert reading.status == "ok" and reading.baseline == 0.0


def test_an_unreadable_value_or_baseline_is_unknown_with_its_reason() -> None:
    assert judge(guardrail(), MetricUnreadable("Prometheus at x is unreachable"), None).line() == (
        "error_rate unknown (Prometheus at x is unreachable)"
    )
    no_base = judge(guardrail(max_increase_percent=50), 0.001, MetricUnreadable("the query returned no series"))
    assert no_base.status == "unknown" and no_base.reason == "no baseline: the query returned no series"
    # an absolute breach needs no baseline
    assert judge(guardrail(max_increase_percent=50), 0.2, MetricUnreadable("x")).status == "critical"


def test_the_baseline_is_the_query_averaged_over_its_window_by_a_subquery() -> None:
    assert baseline_query("sum(x)", 1800) == "avg_over_time((sum(x))[1800s:60s])"
    assert baseline_query("sum(x)", 10) == "avg_over_time((sum(x))[10s:1s])"


# ----- verification rounds -----


def test_a_clean_deploy_succeeds_listing_each_guardrails_value() -> None:
    metrics = FakeMetrics({"avg_over_time": 110, "histogram_quantile": 120, "http_requests_total": 0.002})
    verdict = watch(config([ERROR_RATE, LATENCY]), metrics)
    assert verdict.ok and verdict.checks == 4
    assert "metrics: error_rate 0.2 %, latency_p95 120 ms (baseline 110 ms)" in verdict.summary
    assert verdict.checks_summary == "4 checks over 30s passed"
    assert [r.value_text for r in verdict.guardrails] == ["0.2 %", "120 ms"]
    baselines = [(q, at) for q, at in metrics.asked if q.startswith("avg_over_time")]
    assert len(baselines) == 1 and "[1800s:60s]" in baselines[0][0]  # read once, at the deploy's start


def test_an_error_rate_over_critical_mid_window_fails_naming_metric_value_and_threshold() -> None:
    metrics = FakeMetrics({"http_requests_total": [0.001, 0.1]})
    verdict = watch(config([ERROR_RATE]), metrics)
    assert not verdict.ok and verdict.breached and verdict.checks == 2
    assert verdict.summary == "metric error_rate 10 % (above critical 5 %)"


def test_a_p95_rising_80_percent_over_its_baseline_fails_on_max_increase_percent() -> None:
    metrics = FakeMetrics({"avg_over_time": 100, "histogram_quantile": 180})
    verdict = watch(config([LATENCY]), metrics)
    assert not verdict.ok and verdict.breached
    assert verdict.summary == "metric latency_p95 180 ms (above the baseline +50 % (150 ms); baseline 100 ms)"


def test_unknown_warns_by_default_and_fails_with_on_unknown_fail() -> None:
    down = MetricUnreadable("Prometheus at http://127.0.0.1:9090 is unreachable (ConnectError)")
    verdict = watch(config([ERROR_RATE]), FakeMetrics({"http_requests_total": down}))
    assert (
        verdict.ok and "error_rate unknown (Prometheus at http://127.0.0.1:9090 is unreachable (ConnectError))" in verdict.summary
    )
    failing = watch(config([ERROR_RATE], on_unknown="fail"), FakeMetrics({"http_requests_total": down}))
    assert not failing.ok and not failing.breached and failing.checks == 1
    assert failing.summary.endswith("(on_unknown: fail)")


def test_nan_from_a_division_by_zero_reads_unknown() -> None:
    verdict = watch(config([ERROR_RATE]), FakeMetrics({"http_requests_total": float("nan")}))
    assert "error_rate unknown (the query gave NaN (0/0: no requests in its range?))" in verdict.summary


def test_guardrails_alone_are_enough_to_verify() -> None:
    data = config_data()
    data["prometheus"] = {"url": "http://127.0.0.1:9090"}
    data["services"]["api"] = {"environments": {"production": {"metrics": [ERROR_RATE]}}}
    data["deploys"] = {"watch_seconds": 0, "check_every_seconds": 10}
    verdict = watch(parse_config(data), FakeMetrics({"http_requests_total": 0.0}))
    assert verdict.ok and verdict.verified and "error_rate 0 %" in verdict.summary


def test_problem_lists_every_critical_reading() -> None:
    readings = [judge(guardrail(), 0.2, None), judge(guardrail(name="other"), 0.3, None)]
    assert guardrails.problem(readings, "warn") == (
        "metric error_rate 20 % (above critical 5 %); metric other 30 % (above critical 5 %)"
    )


# ----- messages -----


def test_the_failure_shows_each_metric_and_keeps_the_rollback_button() -> None:
    from bot.domain.deploys.model import Deploy, DeployKind, DeployState

    now = FrozenClock().now()
    deploy = Deploy(
        "d-1",
        DeployKind.DEPLOY,
        "api",
        "production",
        "v2",
        "U0DEV",
        "r",
        DeployState.FAILED,
        now,
        started_at=now,
        finished_at=now,
    )
    readings = (
        judge(guardrail(), 0.1, None),
        judge(guardrail(name="latency", unit="ms", warn=500, critical=1000), MetricUnreadable("no series"), None),
    )
    rendered = Renderer().render(
        DeployFailed(
            deploy, "verification", "metric error_rate 10 % (above critical 5 %)", guardrails=readings, auto_rollback=True
        )
    )
    text = str(rendered["blocks"])
    assert "🔴 `error_rate` *10 %* · above critical 5 %" in text and "❔ `latency` unknown: no series" in text
    assert "'action_id': 'deploy_rollback'" in text and "auto_rollback is on in production" in text
    done = Renderer().render(
        DeploySucceeded(deploy, "ok", "4 checks passed", True, guardrails=(judge(guardrail(), 0.002, 0.001),))
    )
    assert "🟢 `error_rate` *0.2 %* · baseline 0.1 %" in str(done["blocks"])
