"""The `github_actions` deploy provider: a workflow_dispatch with inputs, then the run followed to its end.

The dispatch asks for the run's id (``return_run_details``). A server that answers 204 without it
(older GitHub Enterprise) is handled by taking the oldest workflow_dispatch run of the workflow
created since the dispatch, which can pick a run someone else started at the same moment.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from bot.adapters.deploy_providers.command import format_duration_s, placeholders, substitute
from bot.config import GithubActionsProvider
from bot.domain.deploys.model import DeployOrder, ProviderResult, StopSignal

API_VERSION = "2022-11-28"
MAX_POLL_ERRORS = 5
CLOCK_SKEW = timedelta(seconds=30)


class RunNotFound(Exception):
    pass


class GithubActionsDeploy:
    def __init__(
        self,
        spec: GithubActionsProvider,
        environ: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._spec = spec
        self._environ = os.environ if environ is None else environ
        self._sleep = sleep
        self._monotonic = monotonic

    def inputs(self, order: DeployOrder) -> dict[str, str]:
        values = placeholders(order)
        return {name: substitute(value, values) for name, value in self._spec.inputs.items()}

    def describe(self, order: DeployOrder) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.inputs(order).items()) or "no inputs"
        return f"dispatches workflow `{self._spec.workflow}` of {self._spec.repo} on `{self._spec.ref}` ({shown}) and follows the run"

    def deploy(self, order: DeployOrder, stop: StopSignal) -> ProviderResult:
        token = self._environ.get(self._spec.token_env, "")
        if not token:
            return ProviderResult(False, f"the GitHub token is missing: set the environment variable {self._spec.token_env}")
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "opsbot",
        }
        deadline = self._monotonic() + self._spec.timeout_seconds
        with httpx.Client(base_url=self._spec.api_url.rstrip("/"), headers=headers, timeout=30) as client:
            try:
                run_id = self._dispatch(client, order, deadline)
            except RunNotFound as exc:
                return ProviderResult(False, str(exc))
            except httpx.HTTPError as exc:
                return ProviderResult(False, f"could not reach GitHub to dispatch the workflow ({type(exc).__name__})")
            return self._follow(client, run_id, deadline, stop)

    def _repo_path(self) -> str:
        return f"/repos/{self._spec.repo}/actions"

    def _dispatch(self, client: httpx.Client, order: DeployOrder, deadline: float) -> int:
        since = datetime.now(UTC) - CLOCK_SKEW
        workflow = quote(self._spec.workflow, safe="")
        response = client.post(
            f"{self._repo_path()}/workflows/{workflow}/dispatches",
            json={"ref": self._spec.ref, "inputs": self.inputs(order), "return_run_details": True},
        )
        if response.status_code == 200 and "workflow_run_id" in _json(response):
            return int(_json(response)["workflow_run_id"])
        if response.status_code == 204:
            return self._find_run(client, workflow, since, deadline)
        message = str(_json(response).get("message") or response.text[:200])
        raise RunNotFound(f"GitHub refused the workflow dispatch: HTTP {response.status_code}: {message}")

    def _find_run(self, client: httpx.Client, workflow: str, since: datetime, deadline: float) -> int:
        params: dict[str, str | int] = {
            "event": "workflow_dispatch",
            "branch": self._spec.ref,
            "created": f">={since:%Y-%m-%dT%H:%M:%SZ}",
            "per_page": 20,
        }
        while self._monotonic() < deadline:
            runs = _json(client.get(f"{self._repo_path()}/workflows/{workflow}/runs", params=params)).get("workflow_runs") or []
            if runs:
                return int(min(runs, key=lambda run: str(run.get("created_at", "")))["id"])
            self._sleep(self._spec.poll_seconds)
        raise RunNotFound("the workflow was dispatched but its run did not appear before the timeout")

    def _follow(self, client: httpx.Client, run_id: int, deadline: float, stop: StopSignal) -> ProviderResult:
        errors, run = 0, dict[str, Any]()
        while True:
            if stop.stopped and stop.cancel_remote:
                return self._cancel(client, run_id, run, stop)
            if stop.stopped:
                label = f"workflow run #{run.get('run_number', run_id)}"
                return ProviderResult(False, f"{label} left running ({stop.reason})", link=run.get("html_url"))
            try:
                response = client.get(f"{self._repo_path()}/runs/{run_id}")
                response.raise_for_status()
                run, errors = _json(response), 0
            except httpx.HTTPError as exc:
                errors += 1
                if errors >= MAX_POLL_ERRORS:
                    return ProviderResult(
                        False,
                        f"lost track of workflow run {run_id}: {type(exc).__name__} {errors} times in a row",
                        link=run.get("html_url"),
                    )
            label = f"workflow run #{run.get('run_number', run_id)}"
            if run.get("status") == "completed":
                conclusion = run.get("conclusion") or "unknown"
                return ProviderResult(conclusion == "success", f"{label} completed: {conclusion}", link=run.get("html_url"))
            if self._monotonic() >= deadline:
                return ProviderResult(
                    False,
                    f"{label} still {run.get('status', 'unknown')} after "
                    f"{format_duration_s(self._spec.timeout_seconds)}; stopped waiting",
                    link=run.get("html_url"),
                )
            self._sleep(self._spec.poll_seconds)

    def _cancel(self, client: httpx.Client, run_id: int, run: dict[str, Any], stop: StopSignal) -> ProviderResult:
        """Ask GitHub to cancel the run (``POST …/runs/{id}/cancel``); the result says whether it took the request."""
        label = f"workflow run #{run.get('run_number', run_id)}"
        try:
            response = client.post(f"{self._repo_path()}/runs/{run_id}/cancel")
            asked = (
                "GitHub was asked to cancel it"
                if response.status_code in (202, 409)
                else f"GitHub answered {response.status_code} to the cancel"
            )
        except httpx.HTTPError as exc:
            asked = f"the cancel could not reach GitHub ({type(exc).__name__})"
        return ProviderResult(False, f"{label} was stopped ({stop.reason}); {asked}", link=run.get("html_url"))


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
