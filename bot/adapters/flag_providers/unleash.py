"""Flags in Unleash, through its Admin API: environment on/off, and the flexibleRollout strategy's percentage.

Unleash has no kill switch of its own: a kill turns the environment off (what applications see),
and opsbot's history remembers it was a kill. Unleash's Admin API has no conditional writes (no
ETag/If-Match, no version on environments or strategies), so ``compare_and_set`` re-reads the flag
right before writing and writes only if it is still what the caller decided on. Between that read
and the write (one round trip) a change made in Unleash's UI can still slip in; opsbot's own users
never race each other, because opsbot serializes its changes to a flag (see FlagHistory).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from bot.config import UnleashFlagProvider as UnleashConfig
from bot.domain.flags.model import FlagState
from bot.domain.shared.errors import OpsError, Unavailable

WHAT = "Unleash"


class UnleashFlagProvider:
    kind = "unleash"
    kill_switch = False

    def __init__(
        self, config: UnleashConfig, client: httpx.Client | None = None, environ: Mapping[str, str] | None = None
    ) -> None:
        self._config = config
        self._environ = environ if environ is not None else os.environ
        self._client = client or httpx.Client(base_url=config.url.rstrip("/"), timeout=config.timeout_seconds)
        self._features = f"/api/admin/projects/{quote(config.project, safe='')}/features"

    # ----- reading -----
    def state(self, name: str, environment: str) -> FlagState | None:
        found = self._find(f"{self._feature(name)}/environments/{self._env(environment)}")
        if found is None:
            if self._find(self._feature(name)) is not None:
                raise OpsError(
                    f"Unleash has no environment `{self._unleash_env(environment)}` (see flags.provider.environments)."
                )
            return None
        return _state(found)

    def names(self, environment: str) -> list[str]:
        features = self._request("GET", self._features).json().get("features", [])
        return sorted(f["name"] for f in features if not f.get("archived"))

    def list_flags(self, environments: list[str], contains: str | None, limit: int) -> dict[str, dict[str, FlagState]]:
        names = [n for n in self.names("") if not contains or contains.lower() in n.lower()]
        found: dict[str, dict[str, FlagState]] = {}
        for name in names[:limit]:
            feature = self._find(self._feature(name))
            if feature is None:
                continue  # archived between the two calls
            by_env = {e["name"]: e for e in feature.get("environments", [])}
            found[name] = {
                env: _state(by_env[self._unleash_env(env)]) for env in environments if self._unleash_env(env) in by_env
            }
        return found

    # ----- writing -----
    def compare_and_set(self, name: str, environment: str, expected: FlagState, new: FlagState) -> bool:
        current = self.state(name, environment)
        if current is None or current != expected:
            return False
        if new == current:
            return True
        env = self._env(environment)
        try:
            if new.rollout != current.rollout and new.rollout is not None:
                self._set_rollout(name, env, new.rollout)
            if new.enabled != current.enabled:
                self._request("POST", f"{self._feature(name)}/environments/{env}/{'on' if new.enabled else 'off'}")
        except Unavailable as failure:
            return self._settle(name, environment, expected, new, failure)
        return True

    def _settle(self, name: str, environment: str, expected: FlagState, new: FlagState, failure: Unavailable) -> bool:
        """A write failed or timed out: find out whether it happened, so we never report a half-truth."""
        try:
            after = self.state(name, environment)
        except Unavailable:
            raise OpsError(
                f"Unleash did not confirm the change to `{name}` in `{environment}` ({failure.detail}) and cannot be "
                "read now: it may or may not have happened. Check with `/ops flag show`."
            ) from None
        if after == new:
            return True  # it happened; only the answer was lost
        if after == expected:
            raise failure  # it did not happen: nothing was changed
        return False  # someone else changed it meanwhile: the caller reads and decides again

    def _set_rollout(self, name: str, env: str, rollout: int) -> None:
        base = f"{self._feature(name)}/environments/{env}/strategies"
        strategies = [s for s in self._request("GET", base).json() if not s.get("disabled")]
        if not strategies:
            parameters = {"rollout": str(rollout), "stickiness": "default", "groupId": name}
            self._request("POST", base, json={"name": "flexibleRollout", "parameters": parameters, "constraints": []})
            return
        strategy = strategies[0]  # the one flexibleRollout strategy: anything else reads as custom targeting
        body = {key: strategy[key] for key in ("name", "constraints", "variants", "segments", "title") if key in strategy}
        body["parameters"] = {**strategy.get("parameters", {}), "rollout": str(rollout)}
        self._request("PUT", f"{base}/{quote(strategy['id'], safe='')}", json=body)

    # ----- plumbing -----
    def _feature(self, name: str) -> str:
        return f"{self._features}/{quote(name, safe='')}"

    def _unleash_env(self, environment: str) -> str:
        return self._config.environments.get(environment, environment)

    def _env(self, environment: str) -> str:
        return quote(self._unleash_env(environment), safe="")

    def _headers(self) -> dict[str, str]:
        if not self._config.token_env:
            return {}
        token = self._environ.get(self._config.token_env, "")
        if not token:
            raise Unavailable(WHAT, f"the environment variable {self._config.token_env} holding the admin token is not set")
        return {"Authorization": token}

    def _find(self, path: str) -> dict[str, Any] | None:
        """GET ``path``; None when Unleash answers 404."""
        response = self._request("GET", path, missing_ok=True)
        return None if response.status_code == 404 else dict(response.json())

    def _request(self, method: str, path: str, *, json: Any = None, missing_ok: bool = False) -> httpx.Response:
        try:
            response = self._client.request(method, path, json=json, headers=self._headers())
        except httpx.TimeoutException:
            raise Unavailable(WHAT, f"no answer within {self._config.timeout_seconds:g}s") from None
        except httpx.HTTPError as exc:
            raise Unavailable(WHAT, type(exc).__name__) from None
        status = response.status_code
        if status == 404 and missing_ok:
            return response
        if status >= 500:
            raise Unavailable(WHAT, f"HTTP {status}")
        if status in (401, 403):
            raise OpsError(f"Unleash refused opsbot (HTTP {status}): check the admin token named by flags.provider.token_env.")
        if status >= 400:
            raise OpsError(f"Unleash rejected the request (HTTP {status}): {_message(response)}")
        return response


def _state(environment: dict[str, Any]) -> FlagState:
    """An Unleash environment as a flag state; a single flexibleRollout (or no strategy) is a plain percentage."""
    strategies = [s for s in environment.get("strategies", []) if not s.get("disabled")]
    if not strategies:
        rollout: int | None = 100  # Unleash serves everyone when an enabled environment has no strategy
    elif len(strategies) == 1 and strategies[0].get("name") == "flexibleRollout":
        rollout = int(float(strategies[0].get("parameters", {}).get("rollout", 100)))
    else:
        rollout = None
    return FlagState(enabled=bool(environment.get("enabled")), killed=False, rollout=rollout)


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:160]
    details = body.get("details") or [{}]
    return str(details[0].get("message") or body.get("message") or body)[:160]
