"""The CI gate's GitHub adapter: a ref's commit statuses and check runs, read with httpx.

GitHub's REST API ("Get the combined status for a specific reference", "List check runs for a Git reference"):
``GET /repos/{owner}/{repo}/commits/{ref}/status`` lists the latest status per context (``statuses``, each with
``context``, ``state`` — success, pending, failure, error — and ``target_url``); ``GET …/commits/{ref}/check-runs``
lists ``check_runs`` (``name``, ``status``, ``conclusion``, ``html_url``) with ``total_count``. Both are paginated by
the ``Link`` header (``rel="next"``), 100 a page at most; every page is read, up to ``MAX_PAGES`` of each: a ref
with more is not read as green (``ci_too_many_checks``), though a failed check on the pages read still refuses it.
A ``next`` URL is followed only on ``api_url``'s origin (scheme, host, port): the token is sent nowhere else.

What GitHub answers when it will not (each becomes ``CiUnreadable`` with what to do, never the token):
401 ``Bad credentials`` (the token in ``token_env``); 403 or 429 with ``retry-after`` or ``x-ratelimit-remaining: 0``
("Rate limits for the REST API": wait until ``x-ratelimit-reset``, UTC epoch seconds), other 403 (the token's
permissions: Commit statuses and Checks, read); 404 ``Not Found`` (an unknown repository, or one the token cannot see)
and 422 ``No commit found for SHA: <ref>`` (a ref the repository does not have); 5xx and connection failures
(unreachable: a waiting request tries again on its next poll); a body that is not the JSON GitHub sends (malformed:
an HTML page from a proxy or a web UI's URL in ``api_url``). Messages show ``api_url`` without any user info.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from bot.config import CiGate
from bot.domain.deploys.ci import FAILED_STATUSES, PASSING_CONCLUSIONS, CheckState, CiCheck, CiReport, CiUnreadable

API_VERSION = "2022-11-28"
PER_PAGE = 100
MAX_PAGES = 10


def shown_url(url: str) -> str:
    """``url`` without user info (``https://user:pw@host/x`` → ``https://host/x``), as messages and logs show it."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(an unparsable URL)"
    if parts.username is None and parts.password is None:
        return url
    netloc = f"[{host}]" if ":" in host else host
    return urlunsplit(parts._replace(netloc=f"{netloc}:{port}" if port is not None else netloc))


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """Scheme, host and port (the scheme's default when none is given) — what "the same origin" compares."""
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host.lower(), url.port or default


class GithubCiStatus:
    """``CiStatus`` on GitHub's REST API; the token is read from ``environ`` (default: the process environment)."""

    def __init__(self, environ: Mapping[str, str] | None = None, wall: Callable[[], float] = time.time) -> None:
        self._environ = os.environ if environ is None else environ
        self._wall = wall

    def read(self, gate: CiGate, ref: str, service: str) -> CiReport:
        token = self._environ.get(gate.token_env, "")
        if not token:
            raise CiUnreadable(
                "ci_unauthorized",
                f"no GitHub token: set the environment variable {gate.token_env} (services.{service}.ci.token_env)",
            )
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "opsbot",
        }
        commit = f"/repos/{gate.repo}/commits/{quote(ref, safe='')}"
        base = shown_url(gate.api_url).rstrip("/")  # never credentials from the URL: the token goes in its header
        with httpx.Client(base_url=base, headers=headers, timeout=gate.request_timeout_seconds) as client:
            call = _Call(client, gate, ref, self._wall)
            statuses, statuses_complete = call.all(f"{commit}/status", "statuses")
            runs, runs_complete = call.all(f"{commit}/check-runs", "check_runs")
        try:
            checks = [*(_status(s) for s in statuses), *(_check_run(r) for r in runs)]
        except (KeyError, TypeError, AttributeError) as exc:
            raise CiUnreadable("ci_malformed", call.malformed(f"a check without {exc}")) from None
        named = {c.name for c in checks}
        missing = tuple(name for name in gate.required_checks if name not in named)
        report = CiReport(gate.repo, ref, tuple(checks), missing)
        if (statuses_complete and runs_complete) or report.failed is not None:
            return report  # a failed check on the pages read refuses the ref whatever the pages left say
        problem = (
            f"{ref} in {gate.repo} has more than {MAX_PAGES * PER_PAGE} commit statuses or check runs "
            f"({MAX_PAGES} pages of {PER_PAGE}); opsbot reads no further, so it cannot tell that all passed"
        )
        raise CiUnreadable("ci_too_many_checks", f"{problem}: deploy a ref with fewer checks", problem)


def _status(item: dict[str, Any]) -> CiCheck:
    state = str(item["state"])
    link = item.get("target_url") or None
    if state == "success":
        return CiCheck(str(item["context"]), CheckState.PASSED, state, link)
    if state in FAILED_STATUSES:
        return CiCheck(str(item["context"]), CheckState.FAILED, state, link)
    return CiCheck(str(item["context"]), CheckState.PENDING, state, link)


def _check_run(item: dict[str, Any]) -> CiCheck:
    name, link = str(item["name"]), item.get("html_url") or None
    if item["status"] != "completed":
        return CiCheck(name, CheckState.PENDING, str(item["status"]), link)
    conclusion = str(item.get("conclusion"))
    passed = conclusion in PASSING_CONCLUSIONS
    return CiCheck(name, CheckState.PASSED if passed else CheckState.FAILED, conclusion, link)


class _Call:
    """GET requests for one read, each answer checked as GitHub documents it."""

    def __init__(self, client: httpx.Client, gate: CiGate, ref: str, wall: Callable[[], float]) -> None:
        self._client, self._gate, self._ref, self._wall = client, gate, ref, wall

    def all(self, path: str, key: str) -> tuple[list[dict[str, Any]], bool]:
        """Every item of ``key`` over at most ``MAX_PAGES`` pages (``Link: rel="next"``), and whether that was all
        of them (False: another page was left unread). Raises ``CiUnreadable`` for a ``next`` page off
        ``api_url``'s origin."""
        items: list[dict[str, Any]] = []
        url: httpx.URL | str = path
        params: dict[str, Any] | None = {"per_page": PER_PAGE}
        origin = _origin(self._client.base_url)
        for _ in range(MAX_PAGES):
            response = self._get(url, params)
            items.extend(self._page(response, key))
            following = response.links.get("next", {}).get("url")
            if not following:
                return items, True
            url, params = response.url.join(following), None
            if _origin(url) != origin:
                problem = f"GitHub's next page points outside api_url ({shown_url(str(url.copy_with(query=None)))})"
                raise CiUnreadable("ci_malformed", f"{problem}; check `api_url`", problem)
        return items, False

    def _page(self, response: httpx.Response, key: str) -> list[dict[str, Any]]:
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower() or "no Content-Type"
        try:
            body = response.json()
        except ValueError:
            raise CiUnreadable("ci_malformed", self.malformed(f"HTTP {response.status_code}, {kind}")) from None
        page = body.get(key) if isinstance(body, dict) else None
        if not isinstance(page, list):
            raise CiUnreadable("ci_malformed", self.malformed(f"HTTP {response.status_code}, JSON with no `{key}` list"))
        return page

    def malformed(self, what: str) -> str:
        return (
            f"the answer at {shown_url(self._gate.api_url)} is not GitHub's REST API JSON ({what}); check `api_url` "
            "(it must be the REST API's root, e.g. https://api.github.com) and try again"
        )

    def _get(self, url: httpx.URL | str, params: dict[str, Any] | None) -> httpx.Response:
        gate = self._gate
        try:
            response = self._client.get(url, params=params)
        except httpx.HTTPError as exc:
            problem = f"GitHub ({shown_url(gate.api_url)}) could not be reached ({type(exc).__name__})"
            raise CiUnreadable("ci_unreachable", f"{problem}; try again in a minute", problem) from None
        status = response.status_code
        if status == 200:
            return response
        said = _message(response)
        if status == 401:
            raise CiUnreadable(
                "ci_unauthorized",
                f"GitHub refused the token (401 {said}): check {gate.token_env}, the token opsbot reads CI with",
            )
        if status in (403, 429) and (limit := self._limit(response, said)) is not None:
            raise CiUnreadable("ci_rate_limited", *limit)
        if status == 403:
            raise CiUnreadable(
                "ci_forbidden",
                f"GitHub refused reading CI of {gate.repo} (403 {said}): give the token in {gate.token_env} read access "
                "to commit statuses and checks",
            )
        if status in (404, 422):
            raise CiUnreadable(
                "ci_unknown_ref",
                f"{self._ref} is not a ref in {gate.repo} (GitHub: {status} {said}); tag the commit, or check "
                f"`ci.repo` and that the token in {gate.token_env} can see {gate.repo}",
            )
        if status >= 500:
            problem = f"GitHub answered {status} ({said})"
            raise CiUnreadable("ci_unreachable", f"{problem}; try again in a minute", problem)
        raise CiUnreadable("ci_malformed", self.malformed(f"HTTP {status}"))

    def _limit(self, response: httpx.Response, said: str) -> tuple[str, str] | None:
        """What to say about a rate limit (the message, and the problem alone), or None when this 403/429 is not one."""
        headers = response.headers
        retry_after = headers.get("retry-after", "").strip()
        if retry_after.isdigit():
            at = datetime.fromtimestamp(self._wall() + int(retry_after), UTC)
            problem = f"GitHub is rate limiting opsbot ({response.status_code})"
            return f"{problem}: try again in {retry_after} s (at {at:%H:%M:%S} UTC)", problem
        reset = headers.get("x-ratelimit-reset", "").strip()
        if headers.get("x-ratelimit-remaining", "").strip() == "0" and reset.isdigit():
            at = datetime.fromtimestamp(int(reset), UTC)
            wait = max(0, int(reset) - int(self._wall()))
            problem = f"the GitHub API rate limit of the token in {self._gate.token_env} is spent until {at:%H:%M:%S} UTC"
            return f"{problem} (in {wait} s); try again then", problem
        if "rate limit" in said.lower() or response.status_code == 429:
            problem = f"GitHub is rate limiting opsbot ({response.status_code} {said})"
            return f"{problem}; try again in a minute", problem
        return None


def _message(response: httpx.Response) -> str:
    """GitHub's ``message`` (short), or the start of a plain-text body; an HTML page is not quoted (its reason phrase
    and Content-Type instead)."""
    try:
        body = response.json()
        text = str(body.get("message", "")) if isinstance(body, dict) else ""
    except ValueError:
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind.startswith("text/plain"):
            text = response.text
        else:
            return f"{response.reason_phrase}, {kind or 'no Content-Type'} instead of JSON"
    return " ".join(text.split())[:200] or response.reason_phrase
