"""A local GitHub REST API for the `github_actions` deploy provider, answering as api.github.com does.

What it models (GitHub's REST docs: "Create a workflow dispatch event", "List workflow runs", "Get a workflow
run", "Cancel a workflow run", "Rate limits for the REST API", "Troubleshooting the REST API"):

- ``POST /repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches`` answers **204 with no body**: no run id
  (``return_run_details`` is honoured only when ``run_details=True``, as github.com does since February 2026).
  401 ``Bad credentials`` for a wrong token; 404 ``Not Found`` for an unknown repository or workflow; 422
  ``No ref found for: <ref>`` for an unknown ref, ``Unexpected inputs provided: [...]`` for inputs the workflow does
  not declare, ``Required input '<name>' not provided``, ``Workflow does not have 'workflow_dispatch' trigger``.
- The run it starts is not listed until ``appear_after`` seconds have passed; its ``display_title`` is the
  workflow's ``run-name:`` with ``${{ inputs.x }}`` / ``${{ github.event.inputs.x }}`` filled in (the workflow's
  ``name`` when it has no run-name). Run objects carry no ``inputs``.
- ``GET …/actions/runs`` and ``GET …/actions/workflows/{workflow}/runs``: newest first, filters ``event``,
  ``branch``, ``status`` and ``created`` (``>=T``, ``>T``, ``<=T``, ``<T``, ``A..B``; ISO 8601, seconds), ``per_page``
  (default 30, at most 100) and ``page``, with ``total_count`` and a ``Link`` header (``next``, ``last``, ``prev``,
  ``first``).
- ``status`` goes ``queued`` → ``in_progress`` → ``completed`` after ``queued_for`` / ``running_for`` seconds;
  ``conclusion`` is ``conclusion`` (or what ``conclude(run)`` says) once completed, null before.
- ``POST …/actions/runs/{id}/cancel``: 202 ``{}``; the run completes ``cancelled`` after ``cancel_takes`` seconds;
  409 ``Cannot cancel a workflow run that is completed.`` once it has completed.
- Every answer has ``x-ratelimit-limit``, ``-remaining``, ``-reset`` (UTC epoch seconds), ``-used`` and
  ``-resource: core``. ``exhaust(seconds)`` spends the primary limit: until the reset, requests get 403 with
  ``x-ratelimit-remaining: 0`` and ``API rate limit exceeded``. ``secondary(count, retry_after, status)``: the next
  ``count`` requests get a secondary rate limit (403 or 429) with ``retry-after``.

  ``rate_limit`` requests per ``window`` seconds, then 403 until the reset (``rate_limit=2, window=2``: a small
  budget the caller must wait out). ``forbidden``: 403 ``Resource not accessible by personal access token``
  (a token without Actions permission; the rate-limit headers still show requests left).
- ``dispatch_faults``: the next dispatches lose their answer after starting the run (``"lost"``: the connection
  closes without one) or answer 502 without starting it (``"502"``).
- ``max_per_page`` lowers GitHub's 100 to make pagination cheap to test; ``on_complete(run)`` runs once when a run
  completes (what the workflow would deploy), ``conclude(run)`` picks a run's conclusion.

CI of a commit (the CI gate; REST "Get the combined status for a specific reference", "List check runs for a Git
reference"):

- ``GET /repos/{owner}/{repo}/commits/{ref}/status``: ``state`` (failure if any context is failure or error,
  pending if there are none or one is pending, else success), ``statuses`` (one per context: ``context``, ``state``,
  ``target_url``, ``description``), ``total_count``, ``sha``; ``GET …/commits/{ref}/check-runs``: ``total_count`` and
  ``check_runs`` (``id``, ``name``, ``status``, ``conclusion``, ``html_url``). Both take ``per_page`` (at most
  ``max_per_page``) and ``page`` and answer a ``Link`` header (its URLs on ``link_base`` when set: a ``next`` page on
  another host, as a hostile or misconfigured server might answer).
- A ref the repository does not have: 422 ``No commit found for SHA: <ref>`` (what api.github.com answers on commit
  endpoints for an unknown ref); another repository: 404 ``Not Found``.
- ``add_check(ref, name, …)`` / ``set_check`` and ``set_status(ref, context, state)`` set them; ``malformed = True``
  makes these two answer 200 with a body that is not JSON.

``requests`` records every request (method, path, query, monotonic and wall time, status answered); ``statuses``
every status ``GET …/runs/{id}`` answered; ``cancels`` every run id a cancel was asked for.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

DOCS = "https://docs.github.com/rest/actions/workflows#create-a-workflow-dispatch-event"
PRIMARY_LIMIT = (
    "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID."
)
SECONDARY_LIMIT = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
_EXPRESSION = re.compile(r"\$\{\{\s*(?:github\.event\.)?inputs\.([\w-]+)\s*\}\}")


@dataclass
class Workflow:
    """A workflow file: ``inputs`` maps each declared ``workflow_dispatch`` input to ``{"required", "default"}``."""

    path: str = "deploy.yml"
    name: str = "Deploy"
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    run_name: str | None = None  # the workflow's `run-name:`, e.g. "Deploy ${{ inputs.version }} [${{ inputs.opsbot_run_id }}]"
    dispatchable: bool = True  # has an `on: workflow_dispatch` trigger
    id: int = 161335


@dataclass
class Run:
    id: int
    run_number: int
    workflow: Workflow
    event: str
    branch: str
    display_title: str
    created: float  # monotonic
    created_at: str
    inputs: dict[str, str]
    cancel_at: float | None = None
    conclusion: str | None = None  # decided when it completes


@dataclass
class CheckRun:
    id: int
    name: str
    status: str = "completed"  # queued, in_progress, completed
    conclusion: str | None = "success"  # once completed: success, failure, neutral, cancelled, skipped, timed_out …


class RawBody(bytes):
    """An answer body sent as is (not JSON)."""


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    at: float  # monotonic
    wall: float  # unix time
    status: int = 0


class GithubDouble:
    """A real HTTP server on 127.0.0.1 (port 0) playing github.com's REST API for one repository."""

    def __init__(
        self,
        *,
        repo: str = "example/api",
        token: str = "ghp_test",
        refs: tuple[str, ...] = ("main",),
        workflows: list[Workflow] | None = None,
        appear_after: float = 0.3,
        queued_for: float = 0.2,
        running_for: float = 0.5,
        conclusion: str = "success",
        run_details: bool = False,
        cancel_takes: float = 0.2,
        rate_limit: int = 5000,
        window: int = 3600,
        max_per_page: int = 100,
        list_delay: float = 0.0,
    ) -> None:
        self.repo, self.token, self.refs = repo, token, set(refs)
        self.workflows = {w.path: w for w in (workflows or [Workflow()])}
        self.appear_after, self.queued_for, self.running_for = appear_after, queued_for, running_for
        # GitHub's run lists lag behind: a dispatched run may be listed this long after it was created (its created_at)
        self.list_delay = list_delay
        self.conclusion, self.run_details, self.cancel_takes = conclusion, run_details, cancel_takes
        self.conclude: Callable[[Run], str] | None = None  # a run's conclusion, instead of ``conclusion``
        self.on_complete: Callable[[Run], None] | None = None  # called once when a run completes
        self.dispatch_faults: list[str] = []  # the next dispatches: "lost" (done, no answer), "502" (not done, 502)
        self.forbidden = False  # the token may not use Actions: 403 "Resource not accessible by personal access token"
        self.max_per_page = max_per_page
        self.statuses: dict[int, list[str]] = {}  # run id -> each status answered for it by GET …/runs/{id}
        self.runs: list[Run] = []
        self.requests: list[Request] = []
        self.cancels: list[int] = []
        self.rate_limit, self.window = rate_limit, window
        self._used = 0
        self._reset = math.ceil(time.time()) + window
        self._secondary: list[tuple[int, int]] = []  # (status, retry_after) for the next requests
        self._lock = threading.Lock()
        self._next_id = 9_000_000_001
        self.check_runs: dict[str, list[CheckRun]] = {}  # ref -> its check runs
        self.commit_statuses: dict[str, dict[str, str]] = {}  # ref -> context -> state (success, pending, failure, error)
        self.malformed = False  # the commit status and check-runs endpoints answer 200 with a body that is not JSON
        self.link_base: str | None = None  # the commit CI endpoints' Link URLs point here instead of base_url

    # ----- on demand -----

    def exhaust(self, seconds: int) -> int:
        """Spend the primary rate limit: requests get 403 until ``x-ratelimit-reset`` (now + ``seconds``, whole seconds),
        which it returns (epoch seconds)."""
        with self._lock:
            self._reset = math.ceil(time.time()) + seconds
            self._used = self.rate_limit
            return self._reset

    def secondary(self, count: int, retry_after: int, status: int = 403) -> None:
        """The next ``count`` requests hit a secondary rate limit (``status`` 403 or 429, with ``retry-after``)."""
        with self._lock:
            self._secondary.extend([(status, retry_after)] * count)

    def calm(self) -> None:
        """Drop the secondary rate limits still pending: requests are answered again."""
        with self._lock:
            self._secondary.clear()

    def add_run(self, *, event: str = "push", display_title: str = "Some other run", after: float = 0.0) -> Run:
        """A run nobody here dispatched (someone's push, or a dispatch by hand), created ``after`` seconds from now."""
        with self._lock:
            return self._new_run(next(iter(self.workflows.values())), event, "main", display_title, {}, after)

    def add_check(self, ref: str, name: str, status: str = "completed", conclusion: str | None = "success") -> CheckRun:
        """A check run on ``ref`` (a ref given checks exists in the repository)."""
        with self._lock:
            run = CheckRun(self._next_id, name, status, conclusion if status == "completed" else None)
            self._next_id += 7
            self.check_runs.setdefault(ref, []).append(run)
            return run

    def set_check(self, ref: str, name: str, status: str = "completed", conclusion: str | None = "success") -> None:
        """Move the check run ``name`` of ``ref`` on (e.g. to completed with ``failure``)."""
        with self._lock:
            for run in self.check_runs[ref]:
                if run.name == name:
                    run.status, run.conclusion = status, conclusion if status == "completed" else None

    def set_status(self, ref: str, context: str, state: str) -> None:
        """The commit status of ``context`` on ``ref``: success, pending, failure or error."""
        with self._lock:
            self.commit_statuses.setdefault(ref, {})[context] = state

    def dispatched(self) -> list[Run]:
        return [r for r in self.runs if r.event == "workflow_dispatch"]

    # ----- the server -----

    def start(self) -> GithubDouble:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _reply(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, payload, headers = owner.answer(self.command, self.path, dict(self.headers.items()), body)
                if status == 0:  # the answer is lost: the connection closes without one
                    self.close_connection = True
                    return
                data = b"" if status == 204 else payload if isinstance(payload, RawBody) else json.dumps(payload).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if data:
                    kind = "text/html" if isinstance(payload, RawBody) else "application/json; charset=utf-8"
                    self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _reply

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def answer(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        request = Request(method, parts.path, query, time.monotonic(), time.time())
        with self._lock:
            self.requests.append(request)
            status, payload, extra = self._limited() or self._route(method, parts.path, query, headers, body)
            request.status = status
            return status, payload, {**self._rate_headers(), **extra}

    def _limited(self) -> tuple[int, Any, dict[str, str]] | None:
        now = time.time()
        if now >= self._reset:
            self._used, self._reset = 0, math.ceil(now) + self.window
        if self._used >= self.rate_limit:
            return 403, {"message": PRIMARY_LIMIT, "documentation_url": "https://docs.github.com/rest/rate-limit"}, {}
        if self._secondary:
            status, retry_after = self._secondary.pop(0)
            return (
                status,
                {"message": SECONDARY_LIMIT, "documentation_url": "https://docs.github.com/rest/rate-limit"},
                {"retry-after": str(retry_after)},
            )
        self._used += 1
        return None

    def _rate_headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.rate_limit),
            "x-ratelimit-remaining": str(max(0, self.rate_limit - self._used)),
            "x-ratelimit-reset": str(self._reset),
            "x-ratelimit-used": str(self._used),
            "x-ratelimit-resource": "core",
        }

    def _route(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if auth != f"Bearer {self.token}":
            return 401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}, {}
        if self.forbidden:
            return 403, {"message": "Resource not accessible by personal access token", "documentation_url": DOCS}, {}
        if m := re.fullmatch(rf"/repos/{re.escape(self.repo)}/commits/(.+)/(status|check-runs)", path):
            return self._commit_ci(path, unquote(m.group(1)), m.group(2), query) if method == "GET" else (404, {}, {})
        prefix = f"/repos/{self.repo}/actions"
        not_found = (404, {"message": "Not Found", "documentation_url": DOCS}, {})
        if not path.startswith(prefix + "/"):
            return not_found
        rest = path[len(prefix) :]
        if m := re.fullmatch(r"/workflows/([^/]+)/dispatches", rest):
            return self._dispatch(m.group(1), body) if method == "POST" else not_found
        if m := re.fullmatch(r"/workflows/([^/]+)/runs", rest):
            workflow = self._workflow(m.group(1))
            return self._list(path, query, workflow) if workflow and method == "GET" else not_found
        if rest == "/runs" and method == "GET":
            return self._list(path, query, None)
        if m := re.fullmatch(r"/runs/(\d+)(/cancel)?", rest):
            run = self._visible_run(int(m.group(1)))
            if run is None:
                return not_found
            if m.group(2) and method == "POST":
                return self._cancel(run)
            if method != "GET":
                return not_found
            answer = self._run_json(run)
            self.statuses.setdefault(run.id, []).append(answer["status"])
            return 200, answer, {}
        return not_found

    def _commit_ci(self, path: str, ref: str, what: str, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        docs = "https://docs.github.com/rest/commits/statuses"
        if ref not in self.refs and ref not in self.check_runs and ref not in self.commit_statuses:
            return 422, {"message": f"No commit found for SHA: {ref}", "documentation_url": docs}, {}
        if self.malformed:
            return 200, RawBody(b"<html><body>Unicorn! We are having trouble</body></html>"), {}
        sha = f"{abs(hash(ref)) % 16**40:040x}"
        if what == "status":
            contexts = self.commit_statuses.get(ref, {})
            items: list[dict[str, Any]] = [
                {"context": c, "state": s, "target_url": f"https://ci.example.com/{c}/{sha[:7]}", "description": s}
                for c, s in contexts.items()
            ]
            states = set(contexts.values())
            combined = (
                "failure" if states & {"failure", "error"} else "pending" if not states or "pending" in states else "success"
            )
            page, links = self._page(path, query, items)
            return 200, {"state": combined, "sha": sha, "total_count": len(items), "statuses": page}, links
        runs = [
            {
                "id": r.id,
                "name": r.name,
                "head_sha": sha,
                "status": r.status,
                "conclusion": r.conclusion,
                "html_url": f"https://github.com/{self.repo}/runs/{r.id}",
            }
            for r in self.check_runs.get(ref, [])
        ]
        page, links = self._page(path, query, runs)
        return 200, {"total_count": len(runs), "check_runs": page}, links

    def _page(self, path: str, query: dict[str, str], items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
        per_page = min(self.max_per_page, max(1, int(query.get("per_page", 30))))
        page = max(1, int(query.get("page", 1)))
        last = max(1, math.ceil(len(items) / per_page))
        links = []
        base = self.link_base or self.base_url
        if page < last:
            links += [
                f'<{base}{path}?{urlencode({**query, "page": page + 1})}>; rel="next"',
                f'<{base}{path}?{urlencode({**query, "page": last})}>; rel="last"',
            ]
        return items[(page - 1) * per_page : page * per_page], ({"link": ", ".join(links)} if links else {})

    def _workflow(self, key: str) -> Workflow | None:
        return self.workflows.get(key) or next((w for w in self.workflows.values() if str(w.id) == key), None)

    def _dispatch(self, key: str, body: bytes) -> tuple[int, Any, dict[str, str]]:
        workflow = self._workflow(key)
        if workflow is None:
            return 404, {"message": "Not Found", "documentation_url": DOCS}, {}
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return 400, {"message": "Problems parsing JSON", "documentation_url": DOCS}, {}
        ref = str(request.get("ref") or "")
        inputs = request.get("inputs") or {}
        if not workflow.dispatchable:
            return 422, {"message": "Workflow does not have 'workflow_dispatch' trigger", "documentation_url": DOCS}, {}
        if ref.removeprefix("refs/heads/").removeprefix("refs/tags/") not in self.refs:
            return 422, {"message": f"No ref found for: {ref}", "documentation_url": DOCS}, {}
        unexpected = [name for name in inputs if name not in workflow.inputs]
        if unexpected:
            return 422, {"message": f"Unexpected inputs provided: {json.dumps(unexpected)}", "documentation_url": DOCS}, {}
        for name, declared in workflow.inputs.items():
            if declared.get("required") and name not in inputs and "default" not in declared:
                return 422, {"message": f"Required input '{name}' not provided", "documentation_url": DOCS}, {}
        fault = self.dispatch_faults.pop(0) if self.dispatch_faults else None
        if fault == "502":
            return 502, {"message": "Server Error"}, {}
        values = {name: str(inputs.get(name, declared.get("default", ""))) for name, declared in workflow.inputs.items()}
        title = _EXPRESSION.sub(lambda m: values.get(m.group(1), ""), workflow.run_name) if workflow.run_name else workflow.name
        run = self._new_run(workflow, "workflow_dispatch", ref.removeprefix("refs/heads/"), title, values, self.appear_after)
        if fault == "lost":
            return 0, None, {}
        if self.run_details and request.get("return_run_details"):
            return 200, {"workflow_run_id": run.id, "run_url": self._api_url(run), "html_url": self._html_url(run)}, {}
        return 204, None, {}

    def _new_run(self, workflow: Workflow, event: str, branch: str, title: str, inputs: dict[str, str], appear: float) -> Run:
        created = time.monotonic() + appear
        created_at = datetime.fromtimestamp(time.time() + appear, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        run = Run(self._next_id, len(self.runs) + 1, workflow, event, branch, title, created, created_at, inputs)
        self._next_id += 7
        self.runs.append(run)
        return run

    def _listed(self, run: Run, now: float) -> bool:
        lag = self.list_delay if run.event == "workflow_dispatch" and run.inputs else 0.0
        return run.created + lag <= now

    def _visible_run(self, run_id: int) -> Run | None:
        now = time.monotonic()
        return next((r for r in self.runs if r.id == run_id and r.created <= now), None)

    def _status(self, run: Run) -> tuple[str, str | None]:
        now = time.monotonic()
        if run.cancel_at is not None and now >= run.cancel_at:
            run.conclusion = run.conclusion or "cancelled"
            return "completed", run.conclusion
        if now < run.created + self.queued_for:
            return "queued", None
        if now < run.created + self.queued_for + self.running_for or run.cancel_at is not None:
            return "in_progress", None
        if run.conclusion is None:
            run.conclusion = self.conclude(run) if self.conclude else self.conclusion
            if self.on_complete:
                self.on_complete(run)
        return "completed", run.conclusion

    def _cancel(self, run: Run) -> tuple[int, Any, dict[str, str]]:
        self.cancels.append(run.id)
        if self._status(run)[0] == "completed":
            return 409, {"message": "Cannot cancel a workflow run that is completed.", "documentation_url": DOCS}, {}
        run.cancel_at = run.cancel_at or time.monotonic() + self.cancel_takes
        return 202, {}, {}

    def _api_url(self, run: Run) -> str:
        return f"{self.base_url}/repos/{self.repo}/actions/runs/{run.id}"

    def _html_url(self, run: Run) -> str:
        return f"https://github.com/{self.repo}/actions/runs/{run.id}"

    def _run_json(self, run: Run) -> dict[str, Any]:
        status, conclusion = self._status(run)
        return {
            "id": run.id,
            "name": run.workflow.name,
            "display_title": run.display_title,
            "run_number": run.run_number,
            "run_attempt": 1,
            "event": run.event,
            "status": status,
            "conclusion": conclusion,
            "workflow_id": run.workflow.id,
            "path": f".github/workflows/{run.workflow.path}",
            "head_branch": run.branch,
            "url": self._api_url(run),
            "html_url": self._html_url(run),
            "created_at": run.created_at,
            "updated_at": run.created_at,
            "run_started_at": run.created_at,
        }

    def _list(self, path: str, query: dict[str, str], workflow: Workflow | None) -> tuple[int, Any, dict[str, str]]:
        try:
            per_page = min(self.max_per_page, max(1, int(query.get("per_page", 30))))
            page = max(1, int(query.get("page", 1)))
        except ValueError:
            return 422, {"message": "Invalid request.", "documentation_url": DOCS}, {}
        now = time.monotonic()
        runs = [r for r in self.runs if self._listed(r, now) and (workflow is None or r.workflow is workflow)]
        if "event" in query:
            runs = [r for r in runs if r.event == query["event"]]
        if "branch" in query:
            runs = [r for r in runs if r.branch == query["branch"]]
        if "created" in query:
            runs = [r for r in runs if _created_matches(r.created_at, query["created"])]
        if "status" in query:
            runs = [r for r in runs if query["status"] in self._status(r)]
        runs.sort(key=lambda r: (r.created, r.id), reverse=True)
        shown = runs[(page - 1) * per_page : page * per_page]
        last = max(1, math.ceil(len(runs) / per_page))
        links = []

        def page_url(number: int) -> str:
            return f"{self.base_url}{path}?{urlencode({**query, 'page': number})}"

        if page < last:
            links += [f'<{page_url(page + 1)}>; rel="next"', f'<{page_url(last)}>; rel="last"']
        if page > 1:
            links += [f'<{page_url(page - 1)}>; rel="prev"', f'<{page_url(1)}>; rel="first"']
        extra = {"link": ", ".join(links)} if links else {}
        return 200, {"total_count": len(runs), "workflow_runs": [self._run_json(r) for r in shown]}, extra


def _created_matches(created_at: str, spec: str) -> bool:
    """GitHub's date qualifier on ISO 8601 timestamps (``created=>=2026-11-29T20:47:00Z``); strings of one format
    compare in time order. A date without a time (``2026-11-29``) is widened to the whole day."""

    def norm(value: str, end: bool = False) -> str:
        value = value.strip()
        if len(value) == 10:
            return value + ("T23:59:59Z" if end else "T00:00:00Z")
        return value.replace("+00:00", "Z")

    if ".." in spec:
        low, high = spec.split("..", 1)
        return (low in ("", "*") or created_at >= norm(low)) and (high in ("", "*") or created_at <= norm(high, True))
    for op, test in ((">=", str.__ge__), ("<=", str.__le__), (">", str.__gt__), ("<", str.__lt__)):
        if spec.startswith(op):
            return bool(test(created_at, norm(spec[len(op) :], op.startswith("<"))))
    return created_at[:10] == spec[:10]
