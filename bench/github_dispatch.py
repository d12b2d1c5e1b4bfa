"""Which run does each deploy follow when several dispatch one workflow at once? Correlation id vs oldest run.

Starts the local GitHub double (tests/github_double.py) on loopback and runs N deploys of one workflow at the
same moment, each on its own thread, twice: with the correlation id in the run name (``correlation_input``,
the default) and, as the baseline, with the old rule (the oldest ``workflow_dispatch`` run since the dispatch).
A deploy whose result links to a run started with another deploy's version followed the wrong run. Prints, per mode: deploys that followed their own run, GitHub API requests per deploy, and the time
from the run being listed to the deploy's end (p50/max). It prints figures; it asserts nothing.

    python bench/github_dispatch.py              # 10 deploys at once, runs listed after 0.5 s
    python bench/github_dispatch.py --deploys 20 --appear 1.0
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.adapters.deploy_providers.github_actions import GithubActionsDeploy  # noqa: E402
from bot.config import GithubActionsProvider  # noqa: E402
from bot.domain.deploys.model import DeployKind, DeployOrder, ProviderResult, StopSignal  # noqa: E402
from tests.github_double import GithubDouble, Workflow  # noqa: E402

TOKEN = "ghp_bench"


def run_mode(deploys: int, appear: float, correlated: bool) -> None:
    inputs = {"version": {"required": True}}
    run_name = "Deploy ${{ inputs.version }}"
    if correlated:
        inputs["opsbot_run_id"] = {"required": False}
        run_name += " [${{ inputs.opsbot_run_id }}]"
    server = GithubDouble(
        token=TOKEN, workflows=[Workflow(inputs=inputs, run_name=run_name)], appear_after=appear, running_for=0.5
    ).start()
    spec = GithubActionsProvider(
        type="github_actions",
        repo="example/api",
        workflow="deploy.yml",
        api_url=server.base_url,
        inputs={"version": "{version}"},
        correlation_input="opsbot_run_id" if correlated else None,
        poll_seconds=0.1,
        timeout_seconds=60,
    )
    results: dict[int, tuple[ProviderResult, float]] = {}
    gate = threading.Barrier(deploys)

    def deploy(i: int) -> None:
        order = DeployOrder(f"d-{i:08x}", DeployKind.DEPLOY, "api", "production", f"v{i}", "U0DEV", "bench", None)
        gate.wait()
        result = GithubActionsDeploy(spec, {"GITHUB_TOKEN": TOKEN}).deploy(order, StopSignal())
        results[i] = (result, time.monotonic())

    # Deploy i's own run is the one whose version input is v<i>; its link says which run it followed.
    threads = [threading.Thread(target=deploy, args=(i,)) for i in range(1, deploys + 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    server.stop()
    by_version = {run.inputs.get("version"): run for run in server.dispatched()}
    own = 0
    lags = []
    for i, (result, ended) in results.items():
        run = by_version[f"v{i}"]
        if result.link and result.link.endswith(f"/runs/{run.id}"):
            own += 1
        lags.append(ended - run.created)
    requests = len(server.requests) / max(1, deploys)
    mode = "correlation id in run-name" if correlated else "oldest run since (baseline)"
    print(
        f"{mode:32s} followed own run {own:3d}/{deploys}   API requests/deploy {requests:5.1f}   "
        f"listed→done p50 {statistics.median(lags):5.2f}s max {max(lags):5.2f}s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deploys", type=int, default=10)
    parser.add_argument("--appear", type=float, default=0.5, help="seconds before a dispatched run is listed")
    args = parser.parse_args()
    print(f"{args.deploys} deploys of one workflow dispatched at once; runs listed {args.appear}s after their dispatch")
    run_mode(args.deploys, args.appear, correlated=False)
    run_mode(args.deploys, args.appear, correlated=True)


if __name__ == "__main__":
    main()
