"""The CI gate's GitHub adapter: a ref's commit statuses and check runs, read with httpx.

GitHub's REST API ("Get the combined status for a specific reference", "List check runs for a Git reference"):
``GET /repos/{owner}/{repo}/commits/{ref}/status`` lists the latest status per context (``statuses``, each with
``context``, ``state`` — success, pending, failure, error — and ``target_url``); ``GET …/commits/{ref}/check-runs``
lists ``check_runs`` (``name``, ``status``, ``conclusion``, ``html_url``) with ``total_count``. Both are paginated by
the ``Link`` header (``rel="next"``), 100 a page at most; every page is read (up to ``MAX_PAGES``).

What GitHub answers when it will not (each becomes ``CiUnreadable`` with what to do, never the token):
401 ``Bad credentials`` (the token in ``token_env``); 403 or 429 with ``retry-after`` or ``x-ratelimit-remaining: 0``
("Rate limits for the REST API": wait until ``x-ratelimit-reset``, UTC epoch seconds), other 403 (the token's
permissions: Commit statuses and Checks, read); 404 ``Not Found`` (an unknown repository, or one the token cannot see)
and 422 ``No commit found for SHA: <ref>`` (a ref the repository does not have); 5xx and connection failures
(unreachable: a waiting request tries again on its next poll); a body that is not the JSON GitHub sends (malformed).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from bot.config import CiGate
from bot.domain.deploys.ci import FAILED_STATUSES, PASSING_CONCLUSIONS, CheckState, CiCheck, CiReport, CiUnreadable

API_VERSION = "2022-11-28"
PER_PAGE = 100
MAX_PAGES = 10


class GithubCiStatus:
    """``CiStatus`` on GitHub's REST API; the token is read from ``environ`` (default: the process environment)."""

    def __init__(self, environ: Mapping[str, str] | None = None, wall: Callable[[], float] = time.time) -> None:
        self._environ = os.environ if environ is None else environ
        self._wall = wall

    def read(self, gate: CiGate, ref: str) -> CiReport:
        token = self._environ.get(gate.token_env, "")
        if not token:
            raise CiUnreadable(
                "ci_unauthorized",
                f"no GitHub token: set the environment variable {gate.token_env} (services.<name>.ci.token_env)",
            )
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "opsbot",
        }
        commit = f"/repos/{gate.repo}/commits/{quote(ref, safe='')}"
        with httpx.Client(base_url=gate.api_url.rstrip("/"), headers=headers, timeout=gate.request_timeout_seconds) as client:
            call = _Call(client, gate, ref, self._wall)
            statuses = call.all(f"{commit}/status", "statuses")
            runs = call.all(f"{commit}/check-runs", "check_runs")
        try:
            checks = [*(_status(s) for s in statuses), *(_check_run(r) for r in runs)]
        except (KeyError, TypeError, AttributeError) as exc:
            raise CiUnreadable("ci_malformed", call.malformed(f"a check without {exc}")) from None
        named = {c.name for c in checks}
        missing = tuple(name for name in gate.required_checks if name not in named)
        return CiReport(gate.repo, ref, tuple(checks), missing)


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

    def all(self, path: str, key: str) -> list[dict[str, Any]]:
        """Every item of ``key`` over every page (``Link: rel="next"``)."""
        items: list[dict[str, Any]] = []
        url: str | None = path
        params: dict[str, Any] | None = {"per_page": PER_PAGE}
        for _ in range(MAX_PAGES):
            if url is None:
                break
            response = self._get(url, params)
            try:
                body = response.json()
                page = body[key]
                if not isinstance(page, list):
                    raise TypeError(key)
            except (ValueError, KeyError, TypeError):
                raise CiUnreadable("ci_malformed", self.malformed(f"no `{key}` list")) from None
            items.extend(page)
            url, params = response.links.get("next", {}).get("url"), None
        return items

    def malformed(self, what: str) -> str:
        return (
            f"GitHub's answer at {self._gate.api_url} is not what GitHub sends ({what}); check `api_url` "
            "(it must be the REST API's root, e.g. https://api.github.com) and try again"
        )

    def _get(self, url: str, params: dict[str, Any] | None) -> httpx.Response:
        gate = self._gate
        try:
            response = self._client.get(url, params=params)
        except httpx.HTTPError as exc:
            raise CiUnreadable(
                "ci_unreachable", f"GitHub ({gate.api_url}) could not be reached ({type(exc).__name__}); try again in a minute"
            ) from None
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
            raise CiUnreadable("ci_rate_limited", limit)
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
            raise CiUnreadable("ci_unreachable", f"GitHub answered {status} ({said}); try again in a minute")
        raise CiUnreadable("ci_malformed", self.malformed(f"HTTP {status}"))

    def _limit(self, response: httpx.Response, said: str) -> str | None:
        """What to say about a rate limit, or None when this 403/429 is not one."""
        headers = response.headers
        retry_after = headers.get("retry-after", "").strip()
        if retry_after.isdigit():
            at = datetime.fromtimestamp(self._wall() + int(retry_after), UTC)
            return f"GitHub is rate limiting opsbot ({response.status_code}): try again in {retry_after} s (at {at:%H:%M:%S} UTC)"
        reset = headers.get("x-ratelimit-reset", "").strip()
        if headers.get("x-ratelimit-remaining", "").strip() == "0" and reset.isdigit():
            at = datetime.fromtimestamp(int(reset), UTC)
            wait = max(0, int(reset) - int(self._wall()))
            return (
                f"the GitHub API rate limit of the token in {self._gate.token_env} is spent until {at:%H:%M:%S} UTC "
                f"(in {wait} s); try again then"
            )
        if "rate limit" in said.lower() or response.status_code == 429:
            return f"GitHub is rate limiting opsbot ({response.status_code} {said}); try again in a minute"
        return None


def _message(response: httpx.Response) -> str:
    """GitHub's ``message`` (short), or the start of the body."""
    try:
        body = response.json()
        text = str(body.get("message", "")) if isinstance(body, dict) else ""
    except ValueError:
        text = response.text
    return " ".join(text.split())[:200] or response.reason_phrase
