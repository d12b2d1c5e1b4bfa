"""The `command` deploy provider: a local program run with an argv list (never a shell), with a timeout."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Mapping
from datetime import timedelta

from bot.config import CommandProvider
from bot.config.durations import format_duration
from bot.domain.deploys.model import DeployOrder, ProviderResult

TAIL_LINES = 20
TAIL_CHARS = 2500
# opsbot's own secrets stay with opsbot: a deploy script gets everything else, plus the DEPLOY_* variables.
WITHHELD = ("SLACK_", "OPSBOT_", "DATABASE_URL", "REDIS_URL", "TEST_DATABASE_URL")
KILL_GRACE_SECONDS = 5


def placeholders(order: DeployOrder) -> dict[str, str]:
    """The values ``{service}``, ``{environment}``, ``{version}``, ``{deploy_id}`` and ``{kind}`` stand for."""
    return {
        "service": order.service,
        "environment": order.environment,
        "version": order.version,
        "deploy_id": order.deploy_id,
        "kind": order.kind.value,
    }


def substitute(template: str, values: Mapping[str, str]) -> str:
    """Replace known ``{name}`` placeholders; other braces stay as written."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


def deploy_environment(environ: Mapping[str, str], order: DeployOrder) -> dict[str, str]:
    env = {k: v for k, v in environ.items() if not k.startswith(WITHHELD)}
    env.update({f"DEPLOY_{k.upper()}": v for k, v in placeholders(order).items()})
    env["DEPLOY_REQUESTER"] = order.requester
    return env


class CommandDeploy:
    def __init__(self, spec: CommandProvider, environ: Mapping[str, str] | None = None) -> None:
        self._spec = spec
        self._environ = dict(os.environ if environ is None else environ)

    def argv(self, order: DeployOrder) -> list[str]:
        values = placeholders(order)
        return [substitute(part, values) for part in self._spec.argv]

    def describe(self, order: DeployOrder) -> str:
        where = f" in {self._spec.cwd}" if self._spec.cwd else ""
        return f"runs `{shlex.join(self.argv(order))}`{where} (timeout {format_duration_s(self._spec.timeout_seconds)})"

    def deploy(self, order: DeployOrder) -> ProviderResult:
        argv = self.argv(order)
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=self._spec.cwd,
                env=deploy_environment(self._environ, order),
                start_new_session=True,
            )
        except OSError as exc:
            return ProviderResult(False, f"could not start `{argv[0]}`: {exc.strerror or type(exc).__name__}")
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        reader = threading.Thread(target=_collect, args=(process, tail), name=f"deploy-output-{order.deploy_id}", daemon=True)
        reader.start()
        try:
            code = process.wait(timeout=self._spec.timeout_seconds)
        except subprocess.TimeoutExpired:
            _stop(process)
            reader.join(timeout=KILL_GRACE_SECONDS)
            return ProviderResult(
                False, f"`{argv[0]}` timed out after {format_duration_s(self._spec.timeout_seconds)} and was stopped", _tail(tail)
            )
        reader.join(timeout=KILL_GRACE_SECONDS)
        if code == 0:
            return ProviderResult(True, f"`{argv[0]}` exited with status 0", _tail(tail))
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        return ProviderResult(False, f"`{argv[0]}` {how}", _tail(tail))


def format_duration_s(seconds: float) -> str:
    return format_duration(timedelta(seconds=seconds))


def _collect(process: subprocess.Popen[bytes], tail: deque[str]) -> None:
    assert process.stdout is not None
    for raw in process.stdout:
        tail.append(raw.decode("utf-8", errors="replace").rstrip("\r\n"))


def _stop(process: subprocess.Popen[bytes]) -> None:
    """TERM the program's whole process group, then KILL what is left after a grace period."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE_SECONDS), (signal.SIGKILL, KILL_GRACE_SECONDS)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(lines: deque[str]) -> str:
    text = "\n".join(lines)
    return text if len(text) <= TAIL_CHARS else "…" + text[-TAIL_CHARS:]
