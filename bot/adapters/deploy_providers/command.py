"""The `command` deploy provider: a local program run with an argv list (never a shell), with a timeout."""

from __future__ import annotations

import ctypes
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from bot.config import CommandProvider
from bot.config.durations import format_duration
from bot.domain.deploys.model import DeployOrder, ProviderResult, StopSignal

TAIL_LINES = 20
TAIL_CHARS = 2500
# opsbot's own secrets stay with opsbot: a deploy script gets everything else, plus the DEPLOY_* variables.
WITHHELD = ("SLACK_", "OPSBOT_", "DATABASE_URL", "REDIS_URL", "TEST_DATABASE_URL")
KILL_GRACE_SECONDS = 5
POLL_SECONDS = 0.1
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


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

    def deploy(self, order: DeployOrder, stop: StopSignal) -> ProviderResult:
        argv = self.argv(order)
        try:
            # Its own process group (so the whole group can be ended), and it dies with the process that started it.
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=self._spec.cwd,
                env=deploy_environment(self._environ, order),
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            return ProviderResult(False, f"could not start `{argv[0]}`: {exc.strerror or type(exc).__name__}")
        stop.process_started(describe_process(process.pid))
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        reader = threading.Thread(target=_collect, args=(process, tail), name=f"deploy-output-{order.deploy_id}", daemon=True)
        reader.start()
        deadline = time.monotonic() + self._spec.timeout_seconds
        code = process.poll()
        while code is None:
            if stop.wait(POLL_SECONDS):
                _stop(process)
                reader.join(timeout=KILL_GRACE_SECONDS)
                return ProviderResult(False, f"`{argv[0]}` was stopped: {stop.reason}", _tail(tail))
            if time.monotonic() >= deadline:
                _stop(process)
                reader.join(timeout=KILL_GRACE_SECONDS)
                return ProviderResult(
                    False,
                    f"`{argv[0]}` timed out after {format_duration_s(self._spec.timeout_seconds)} and was stopped",
                    _tail(tail),
                )
            code = process.poll()
        reader.join(timeout=KILL_GRACE_SECONDS)
        if code == 0:
            return ProviderResult(True, f"`{argv[0]}` exited with status 0", _tail(tail))
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        return ProviderResult(False, f"`{argv[0]}` {how}", _tail(tail))


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL it when the process that started it dies (Linux's PR_SET_PDEATHSIG),
    so a worker killed with SIGKILL leaves no deploy program behind. Elsewhere a no-op (the reconciler ends it)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def describe_process(pid: int) -> str:
    """``host:pgid:start-ticks`` of the process group ``pid`` leads, so a later check knows it is still the same one."""
    return f"{socket.gethostname()}:{pid}:{start_ticks(pid) or 0}"


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (/proc/<pid>/stat field 22); None when it is gone (or not Linux)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def end_process_group(description: str) -> bool:
    """SIGKILL the process group ``description`` names (``describe_process``) if it runs on this host and is still
    ours; True when a group was ended. The reconciler uses it for the run of a worker that died.

    Still ours: its leader is the same process (same start time), or its leader is gone while members of the
    group live on (Linux does not hand out a pid that is still some group's id).
    """
    host, _, rest = description.partition(":")
    pgid_text, _, ticks = rest.partition(":")
    if host != socket.gethostname() or not pgid_text.isdigit():
        return False
    pgid = int(pgid_text)
    leader = start_ticks(pgid)
    if leader is not None and str(leader) != ticks:
        return False  # the number now belongs to another process: not ours to end
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    return True


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
