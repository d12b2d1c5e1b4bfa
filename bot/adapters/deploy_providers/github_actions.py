"""The `github_actions` deploy provider: a workflow_dispatch with inputs, then *its* run followed to its end.

GitHub's "Create a workflow dispatch event" answers 204 with no body: it does not say which run it started
(github.com returns the run's id since February 2026 when asked with ``return_run_details``; GitHub Enterprise
Server may not). So opsbot passes a correlation id, the deploy's id, as the workflow input ``correlation_input``
(default ``opsbot_run_id``); the workflow puts it in its ``run-name:``, which GitHub shows as the run's
``display_title``. The provider then lists the workflow's ``workflow_dispatch`` runs created since just before the
dispatch (every page) and takes the one whose title carries the id: two dispatches at once each find their own run.

Rate limits (GitHub's "Rate limits for the REST API"): a 403 or 429 with ``retry-after`` waits that long; with
``x-ratelimit-remaining: 0`` it waits until ``x-ratelimit-reset`` (UTC epoch seconds), also before the next call
after an answer that spent the last request; otherwise a secondary limit waits a minute, doubling. A limit that
outlasts the deploy's timeout fails the deploy, saying so. Stopping the deploy (lock lost, ``/ops cancel``) or
passing ``timeout_seconds`` cancels the run (``POST …/runs/{id}/cancel``) and waits briefly for GitHub to confirm it;
a worker handing the deploy over to the reconciler leaves it running. The run's page goes to ``stop.link_found`` as
soon as it is known (the deploy edits its announcement) and into the result's ``link``.
"""

from __future__ import annotations

import os
import re
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
CONNECT_TRIES = 3  # a dispatch whose connection failed reached nobody: it may be tried again
CLOCK_SKEW = timedelta(seconds=30)  # the created filter starts this long before the dispatch (clocks differ)
FIND_SECONDS = 120.0  # how long the run may take to be listed after the dispatch
FIND_EVERY_SECONDS = 2.0
MAX_PAGES = 10  # 1,000 runs at 100 a page: GitHub's own ceiling for a filtered list
AFTER_STOP_SECONDS = 60.0  # how long a stopped deploy keeps trying to find and cancel its run
SECONDARY_WAIT_SECONDS = 60.0  # GitHub: "wait for at least one minute", then exponentially longer
CONCLUSIONS = {
    "failure": "a job failed",
    "cancelled": "the run was cancelled on GitHub",
    "timed_out": "a job ran past its timeout-minutes",
    "action_required": "it waits for someone to approve it on GitHub",
    "startup_failure": "the workflow could not start (check the workflow file)",
    "stale": "GitHub marked it stale",
    "skipped": "its jobs were skipped",
    "neutral": "it ended neutral, not successful",
}


class Failed(Exception):
    """The deploy fails with this one-line summary (and the run's page, once known)."""

    def __init__(self, summary: str, link: str | None = None) -> None:
        super().__init__(summary)
        self.summary, self.link = summary, link


class Interrupted(Exception):
    """The deploy was stopped while waiting."""


class GithubActionsDeploy:
    def __init__(
        self,
        spec: GithubActionsProvider,
        environ: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._spec = spec
        self._environ = os.environ if environ is None else environ
        self._sleep, self._monotonic, self._wall = sleep, monotonic, wall

    def inputs(self, order: DeployOrder) -> dict[str, str]:
        """The workflow inputs: the configured ones with placeholders filled in, and the correlation id."""
        values = placeholders(order)
        inputs = {name: substitute(value, values) for name, value in self._spec.inputs.items()}
        if self._spec.correlation_input:
            inputs[self._spec.correlation_input] = order.deploy_id
        return inputs

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
            api = _Api(client, stop, self._sleep, self._monotonic, self._wall)
            try:
                run = self._dispatch(api, order, deadline, stop)
                if run.get("html_url"):
                    stop.link_found(str(run["html_url"]))
                return self._follow(api, run, deadline, stop)
            except Failed as exc:
                return ProviderResult(False, exc.summary, link=exc.link or stop.link)

    # ----- dispatch and find the run -----

    def _actions(self) -> str:
        return f"/repos/{self._spec.repo}/actions"

    def _workflow(self) -> str:
        return f"workflow `{self._spec.workflow}` of {self._spec.repo}"

    def _dispatch(self, api: _Api, order: DeployOrder, deadline: float, stop: StopSignal) -> dict[str, Any]:
        since = datetime.fromtimestamp(self._wall(), UTC) - CLOCK_SKEW
        url = f"{self._actions()}/workflows/{quote(self._spec.workflow, safe='')}/dispatches"
        body: dict[str, Any] = {"ref": self._spec.ref, "inputs": self.inputs(order), "return_run_details": True}
        if stop.stopped:
            raise Failed(f"stopped before {self._workflow()} was dispatched ({stop.reason})")
        try:
            response = self._post(api, url, body, deadline, stop)
            if response.status_code in (400, 422) and "return_run_details" in _message(response):
                body.pop("return_run_details")  # a server that predates it: ask again without
                response = self._post(api, url, body, deadline, stop)
        except httpx.ConnectError as exc:
            raise Failed(f"could not reach GitHub to dispatch {self._workflow()} ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:  # sent, but the answer was lost: GitHub may have started the run
            doubt = f"the answer to the dispatch was lost ({type(exc).__name__})"
            return self._find_run(api, order.deploy_id, since, deadline, stop, doubt=doubt)
        except Interrupted:
            raise Failed(f"stopped before {self._workflow()} was dispatched ({stop.reason})") from None
        if response.status_code == 200 and "workflow_run_id" in _json(response):
            details = _json(response)
            return {"id": int(details["workflow_run_id"]), "html_url": details.get("html_url")}
        if response.status_code >= 500:  # GitHub may or may not have started it: never dispatched twice, looked for
            doubt = f"GitHub answered HTTP {response.status_code} to the dispatch"
            return self._find_run(api, order.deploy_id, since, deadline, stop, doubt=doubt)
        if response.status_code != 204:
            raise Failed(self._refused(response))
        return self._find_run(api, order.deploy_id, since, deadline, stop)

    def _post(self, api: _Api, url: str, body: dict[str, Any], deadline: float, stop: StopSignal) -> httpx.Response:
        """The dispatch, tried again only when the connection could not be made (nothing reached GitHub)."""
        for attempt in range(CONNECT_TRIES):
            try:
                return api.call("POST", url, deadline, json=body)
            except httpx.ConnectError:
                if attempt == CONNECT_TRIES - 1:
                    raise
                if stop.wait(2.0**attempt):
                    raise Interrupted() from None
        raise AssertionError("unreachable")

    def _refused(self, response: httpx.Response) -> str:
        """Why GitHub refused the dispatch, and what to change; never the token."""
        status, message, spec = response.status_code, _message(response), self._spec
        if status == 401:
            return f"GitHub refused the token in {spec.token_env} (HTTP 401: {message}): set {spec.token_env} to a valid token"
        if status == 403:
            return (
                f"the token in {spec.token_env} may not dispatch {self._workflow()} (HTTP 403: {message}): it needs "
                "Actions read and write on the repository (fine-grained token) or the repo scope (classic token)"
            )
        if status == 404:
            return (
                f"GitHub found no {self._workflow()} (HTTP 404): check `repo` and `workflow` (the file name under "
                f".github/workflows, or its id), and that the token in {spec.token_env} can see the repository"
            )
        if status == 422 and message.startswith("No ref found"):
            return f"{spec.repo} has no branch or tag `{spec.ref}` (HTTP 422: {message}): check `ref`"
        if status == 422 and message.startswith("Unexpected inputs"):
            hint = ""
            if spec.correlation_input and spec.correlation_input in message:
                hint = (
                    f"; `{spec.correlation_input}` carries opsbot's run id: declare it and use it in the workflow's "
                    "`run-name:` (docs/deploys.md), or set `correlation_input: null`"
                )
            return (
                f"{self._workflow()} does not declare every input opsbot sends (HTTP 422: {message}): declare them "
                f"under `on: workflow_dispatch: inputs:` or remove them from `inputs`{hint}"
            )
        if status == 422 and "workflow_dispatch" in message:
            return f"{self._workflow()} cannot be dispatched (HTTP 422: {message}): add `on: workflow_dispatch` to it"
        return f"GitHub refused to dispatch {self._workflow()}: HTTP {status}: {message}"

    def _find_run(
        self, api: _Api, correlation: str, since: datetime, deadline: float, stop: StopSignal, doubt: str | None = None
    ) -> dict[str, Any]:
        """The run this dispatch started: the one whose title carries ``correlation`` (all pages); without a
        correlation input, the oldest workflow_dispatch run since the dispatch (which another dispatch can confuse).
        ``doubt``: why the dispatch may not have started anything (then only a correlated run counts)."""
        name = self._spec.correlation_input
        if doubt and not name:
            raise Failed(f"{doubt}; without `correlation_input` opsbot cannot tell whether {self._workflow()} started")
        pattern = re.compile(rf"(?<![\w-]){re.escape(correlation)}(?![\w-])")
        find_for = min(FIND_SECONDS, float(self._spec.timeout_seconds))
        give_up, after_stop = min(deadline, self._monotonic() + find_for), False
        params: dict[str, str | int] = {
            "event": "workflow_dispatch",
            "created": f">={since:%Y-%m-%dT%H:%M:%SZ}",
            "per_page": 100,
        }
        url = f"{self._actions()}/workflows/{quote(self._spec.workflow, safe='')}/runs"
        errors = 0
        while True:
            if stop.stopped and not stop.cancel_remote:
                raise Failed(f"stopped ({stop.reason}) before the run of {self._workflow()} appeared; it goes on")
            if stop.stopped and not after_stop:  # keep looking a little: the run is to be cancelled
                give_up, after_stop = min(give_up, self._monotonic() + AFTER_STOP_SECONDS), True
            try:
                runs = self._list_runs(api, url, params, give_up, interruptible=not after_stop)
                errors = 0
            except (httpx.HTTPError, _BadAnswer) as exc:
                errors += 1
                if errors >= MAX_POLL_ERRORS:
                    raise Failed(f"{self._workflow()} was dispatched but listing its runs failed {errors} times: {exc}") from None
                runs = []
            except Interrupted:
                runs = []
            if name:
                mine = [
                    r
                    for r in runs
                    if pattern.search(str(r.get("display_title") or "")) or pattern.search(str(r.get("name") or ""))
                ]
            else:
                mine = runs[-1:]  # newest first: the last is the oldest
            if mine:
                return min(mine, key=lambda r: (str(r.get("created_at", "")), int(r.get("id", 0))))
            if self._monotonic() >= give_up:
                if doubt:
                    raise Failed(
                        f"{doubt} and no run of {self._workflow()} titled with `{correlation}` appeared within "
                        f"{format_duration_s(int(find_for))}: it was most likely not dispatched; deploy again"
                    )
                if stop.stopped:
                    raise Failed(f"stopped ({stop.reason}) before the run of {self._workflow()} appeared; check it on GitHub")
                hint = (
                    f": does its `run-name:` include `${{{{ inputs.{name} }}}}`? (docs/deploys.md)"
                    if name
                    else "; set `correlation_input` to find it for sure"
                )
                raise Failed(
                    f"{self._workflow()} was dispatched but no run"
                    + (f" titled with `{correlation}`" if name else "")
                    + f" appeared within {format_duration_s(int(find_for))}{hint}"
                )
            wait = min(self._spec.poll_seconds, FIND_EVERY_SECONDS)
            if stop.stopped:
                self._sleep(wait)
            else:
                stop.wait(wait)

    def _list_runs(
        self, api: _Api, url: str, params: dict[str, str | int], deadline: float, *, interruptible: bool
    ) -> list[dict[str, Any]]:
        """Every page of runs (``Link: rel="next"``), newest first; raises _BadAnswer on a non-200."""
        runs: list[dict[str, Any]] = []
        next_url: str | None = url
        query: dict[str, str | int] | None = params
        for _ in range(MAX_PAGES):
            if next_url is None:
                break
            response = api.call("GET", next_url, deadline, params=query, interruptible=interruptible)
            if response.status_code != 200:
                raise _BadAnswer(f"HTTP {response.status_code}: {_message(response)}")
            runs.extend(r for r in _json(response).get("workflow_runs") or [] if isinstance(r, dict))
            next_url, query = response.links.get("next", {}).get("url"), None
        return runs

    # ----- follow the run -----

    def _follow(self, api: _Api, run: dict[str, Any], deadline: float, stop: StopSignal) -> ProviderResult:
        run_id, errors = int(run["id"]), 0
        while True:
            if stop.stopped:
                return self._stopped(api, run, stop)
            try:
                response = api.call("GET", f"{self._actions()}/runs/{run_id}", deadline)
                if response.status_code >= 400:
                    raise _BadAnswer(f"HTTP {response.status_code}: {_message(response)}")
                run, errors = {**run, **_json(response)}, 0
            except Interrupted:
                continue
            except (httpx.HTTPError, _BadAnswer) as exc:
                errors += 1
                if errors >= MAX_POLL_ERRORS:
                    raise Failed(
                        f"lost track of {_label(run)}: {_why(exc)} {errors} times in a row", run.get("html_url")
                    ) from None
            if run.get("status") == "completed":
                return _concluded(run)
            if self._monotonic() >= deadline:  # like a command past its timeout, the run is stopped
                why = f"still {run.get('status', 'unknown')} after {format_duration_s(self._spec.timeout_seconds)}"
                return self._cancel(api, run, why)
            stop.wait(self._spec.poll_seconds)

    def _stopped(self, api: _Api, run: dict[str, Any], stop: StopSignal) -> ProviderResult:
        if not stop.cancel_remote:
            return ProviderResult(False, f"{_label(run)} left running ({stop.reason})", link=run.get("html_url"))
        return self._cancel(api, run, f"was stopped ({stop.reason})")

    def _cancel(self, api: _Api, run: dict[str, Any], why: str) -> ProviderResult:
        """Cancel the run (``POST …/runs/{id}/cancel`` → 202; 409 once it completed), then wait up to
        AFTER_STOP_SECONDS for GitHub to show it completed. The summary starts with the run and ``why``."""
        link = run.get("html_url")
        label = f"{_label(run)} {why}"
        until = self._monotonic() + AFTER_STOP_SECONDS
        try:
            response = api.call("POST", f"{self._actions()}/runs/{int(run['id'])}/cancel", until, interruptible=False)
        except (httpx.HTTPError, Failed) as exc:
            return ProviderResult(False, f"{label}; the cancel failed: {_why(exc)}", link=link)
        if response.status_code == 409:
            return ProviderResult(False, f"{label}; it had already completed", link=link)
        if response.status_code != 202:
            asked = f"GitHub answered HTTP {response.status_code} to the cancel: {_message(response)}"
            return ProviderResult(False, f"{label}; {asked}", link=link)
        while self._monotonic() < until:
            try:
                answer = api.call("GET", f"{self._actions()}/runs/{int(run['id'])}", until, interruptible=False)
                if answer.status_code == 200 and _json(answer).get("status") == "completed":
                    conclusion = _json(answer).get("conclusion")
                    ended = "GitHub cancelled it" if conclusion == "cancelled" else f"it completed anyway: {conclusion}"
                    return ProviderResult(False, f"{label}; {ended}", link=link)
            except (httpx.HTTPError, Failed):
                pass
            self._sleep(min(self._spec.poll_seconds, FIND_EVERY_SECONDS))
        return ProviderResult(False, f"{label}; GitHub was asked to cancel it", link=link)


class _BadAnswer(Exception):
    pass


class _Api:
    """GitHub calls that respect its rate limits (see the module docstring)."""

    def __init__(
        self,
        client: httpx.Client,
        stop: StopSignal,
        sleep: Callable[[float], None],
        monotonic: Callable[[], float],
        wall: Callable[[], float],
    ) -> None:
        self._client, self._stop, self._sleep, self._monotonic, self._wall = client, stop, sleep, monotonic, wall
        self._not_before = 0.0  # monotonic: no call before this (the primary limit is spent until its reset)
        self._secondary_hits = 0

    def call(self, method: str, url: str, deadline: float, *, interruptible: bool = True, **kwargs: Any) -> httpx.Response:
        """One request, waiting out rate limits; raises Failed when a limit outlasts ``deadline`` (monotonic),
        Interrupted when the deploy is stopped during a wait (``interruptible``), httpx.HTTPError on transport errors."""
        while True:
            self._wait(self._not_before - self._monotonic(), deadline, interruptible, "")
            response = self._client.request(method, url, **kwargs)
            now = self._monotonic()
            wait, why = self._limited(response)
            if wait is None:
                if response.headers.get("x-ratelimit-remaining") == "0":
                    self._not_before = now + self._until_reset(response)
                return response
            self._wait(wait, deadline, interruptible, why)

    def _wait(self, seconds: float, deadline: float, interruptible: bool, why: str) -> None:
        if seconds <= 0:
            return
        if self._monotonic() + seconds > deadline:
            raise Failed(f"GitHub's {why or 'rate limit'} asks opsbot to wait {seconds:.0f}s, past the deploy's timeout")
        if interruptible:
            if self._stop.wait(seconds):
                raise Interrupted()
        else:
            self._sleep(seconds)

    def _limited(self, response: httpx.Response) -> tuple[float | None, str]:
        """(seconds to wait, which limit) when the answer is a rate limit; (None, "") otherwise."""
        if response.status_code not in (403, 429):
            return None, ""
        headers = response.headers
        retry_after = headers.get("retry-after", "")
        if retry_after.isdigit():
            return float(retry_after), "secondary rate limit"
        if headers.get("x-ratelimit-remaining") == "0":
            return self._until_reset(response), "primary rate limit"
        if response.status_code == 429 or "rate limit" in _message(response).lower():
            self._secondary_hits += 1
            return SECONDARY_WAIT_SECONDS * 2 ** (self._secondary_hits - 1), "secondary rate limit"
        return None, ""

    def _until_reset(self, response: httpx.Response) -> float:
        reset = response.headers.get("x-ratelimit-reset", "")
        return max(1.0, float(reset) - self._wall() + 1) if reset.isdigit() else SECONDARY_WAIT_SECONDS


def _concluded(run: dict[str, Any]) -> ProviderResult:
    conclusion = str(run.get("conclusion") or "unknown")
    if conclusion == "success":
        return ProviderResult(True, f"{_label(run)} succeeded", link=run.get("html_url"))
    why = CONCLUSIONS.get(conclusion, "not a success")
    return ProviderResult(False, f"{_label(run)} failed: conclusion {conclusion} ({why})", link=run.get("html_url"))


def _label(run: dict[str, Any]) -> str:
    number = run.get("run_number")
    return f"workflow run #{number}" if number else f"workflow run {run.get('id')}"


def _why(exc: Exception) -> str:
    return str(exc) if isinstance(exc, (Failed, _BadAnswer)) else type(exc).__name__


def _message(response: httpx.Response) -> str:
    return str(_json(response).get("message") or response.text[:200]).strip()


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
