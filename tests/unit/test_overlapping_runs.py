"""``overlapping``: which provider runs of one target were under way at the same time."""

from __future__ import annotations

import json
from pathlib import Path

from tests.deploy_kit import Run, overlapping, provider_runs


def run(name: str, started: float, ended: float | None, service: str = "api", environment: str = "production") -> Run:
    return Run(name, "command", f"d-{name}", service, environment, "v1", 100, started, ended)


def names(pairs: list[tuple[Run, Run]]) -> list[tuple[str, str]]:
    return [(a.run, b.run) for a, b in pairs]


def test_runs_one_after_another_do_not_overlap() -> None:
    assert overlapping([run("a", 0, 10), run("b", 11, 20), run("c", 25, 30)]) == []


def test_a_run_that_starts_before_another_ends_overlaps_it() -> None:
    assert names(overlapping([run("a", 0, 10), run("b", 9.5, 20)])) == [("a", "b")]


def test_runs_that_only_touch_do_not_overlap() -> None:
    assert overlapping([run("a", 0, 10), run("b", 10, 20)]) == []


def test_a_run_inside_another_overlaps_it() -> None:
    assert names(overlapping([run("b", 2, 3), run("a", 0, 10)])) == [("a", "b")]


def test_runs_of_other_targets_never_overlap() -> None:
    runs = [run("a", 0, 10), run("b", 5, 15, environment="staging"), run("c", 5, 15, service="web")]
    assert overlapping(runs) == []


def test_a_run_without_an_end_runs_until_now() -> None:
    killed = run("a", 0, None)
    later = run("b", 50, 60)
    assert names(overlapping([killed, later], now=100)) == [("a", "b")]
    assert overlapping([killed, later], now=40) == []


def test_every_overlapping_pair_is_named_in_start_order() -> None:
    runs = [run("c", 8, 12), run("a", 0, 10), run("b", 5, 9), run("d", 20, 21)]
    assert names(overlapping(runs)) == [("a", "b"), ("a", "c"), ("b", "c")]


def test_provider_runs_pairs_start_and_end_lines(tmp_path: Path) -> None:
    base = {"provider": "command", "service": "api", "environment": "staging", "version": "v1", "pid": 7}
    lines = [
        {**base, "run": "r1", "deploy_id": "d-1", "started": 1.0, "ended": None},
        {**base, "run": "r2", "deploy_id": "d-2", "started": 2.0, "ended": None},
        {**base, "run": "r1", "deploy_id": "d-1", "started": 1.0, "ended": 3.0, "exit": 0},
    ]
    (tmp_path / "runs.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    runs = provider_runs(tmp_path)
    assert [(r.run, r.started, r.ended, r.exit) for r in runs] == [("r1", 1.0, 3.0, 0), ("r2", 2.0, None, None)]
    assert provider_runs(tmp_path / "nothing-here") == []
