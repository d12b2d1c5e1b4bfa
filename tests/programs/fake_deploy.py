#!/usr/bin/env python3
"""A deploy program for tests: records the deploy, "installs" the version, prints like a real one.

usage: fake_deploy.py STATE_DIR SERVICE ENVIRONMENT VERSION [--exit N] [--sleep SECONDS] [--wait-for PATH]
                      [--ignore-term] [--spawn-child SECONDS]

It appends "SERVICE ENVIRONMENT VERSION DEPLOY_ID" to STATE_DIR/deploys.log and, when it exits 0,
writes VERSION to STATE_DIR/SERVICE-ENVIRONMENT.version, which the test health server reports.
A file STATE_DIR/next-exit, if present, overrides --exit once (and is removed).

Each run is also a pair of JSON lines in STATE_DIR/runs.jsonl (``tests.deploy_kit.provider_runs``
reads them): one written (flushed and fsynced) as it starts, with "ended": null, and one as it ends,
with "ended" and "exit" (unix times, float seconds); both carry "run", "provider": "command",
"deploy_id", "service", "environment", "version", "pid" and "started". A run killed by SIGKILL leaves
its start line alone; one stopped by SIGTERM writes its end line ("exit": -15) and then dies of the
signal as before; one ended by an exception (BrokenPipeError when whoever read its output is gone)
writes its end line ("exit": 1, "error": the exception's name) and then fails as before.

--ignore-term   keep running after SIGTERM (prints "ignoring SIGTERM"): only SIGKILL stops it.
--spawn-child S start a grandchild in this process group (stdio on /dev/null) that appends its pid to
                STATE_DIR/children.txt and sleeps S seconds; the program waits until the pid is written
                and never waits for the grandchild.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

CHILD = """
import os, sys, time
with open(sys.argv[1], "a") as f:
    f.write(f"{os.getpid()}\\n")
    f.flush()
    os.fsync(f.fileno())
time.sleep(float(sys.argv[2]))
"""


def record(state: Path, run: dict) -> None:
    with (state / "runs.jsonl").open("a") as runs:
        runs.write(json.dumps(run) + "\n")
        runs.flush()
        os.fsync(runs.fileno())


def spawn_child(state: Path, seconds: float) -> None:
    pids = state / "children.txt"
    before = pids.read_text().count("\n") if pids.exists() else 0
    subprocess.Popen(
        [sys.executable, "-c", CHILD, str(pids), str(seconds)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while (pids.read_text().count("\n") if pids.exists() else 0) <= before and time.monotonic() < deadline:
        time.sleep(0.01)


def main() -> int:
    parser = argparse.ArgumentParser()
    for name in ("state_dir", "service", "environment", "version"):
        parser.add_argument(name)
    parser.add_argument("--exit", type=int, default=0)
    parser.add_argument("--sleep", type=float, default=0)
    parser.add_argument("--wait-for")
    parser.add_argument("--ignore-term", action="store_true")
    parser.add_argument("--spawn-child", type=float)
    args = parser.parse_args()
    state = Path(args.state_dir)
    run = {
        "run": uuid.uuid4().hex,
        "provider": "command",
        "deploy_id": os.environ.get("DEPLOY_DEPLOY_ID"),
        "service": args.service,
        "environment": args.environment,
        "version": args.version,
        "pid": os.getpid(),
        "started": time.time(),
        "ended": None,
    }
    record(state, run)

    def on_term(signum: int, frame: object) -> None:
        if args.ignore_term:
            print("ignoring SIGTERM", flush=True)
            return
        record(state, {**run, "ended": time.time(), "exit": -signal.SIGTERM})
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)  # die of the signal, as without this handler

    signal.signal(signal.SIGTERM, on_term)
    try:
        code = deploy(args, state)
    except BaseException as exc:  # SystemExit too: the run ended, and when matters
        record(state, {**run, "ended": time.time(), "exit": 1, "error": type(exc).__name__})
        raise
    record(state, {**run, "ended": time.time(), "exit": code})
    return code


def deploy(args: argparse.Namespace, state: Path) -> int:
    if args.spawn_child is not None:
        spawn_child(state, args.spawn_child)
    print(f"deploying {args.service} {args.version} to {args.environment} ({os.environ.get('DEPLOY_DEPLOY_ID')})", flush=True)
    print(f"slack token visible: {'SLACK_BOT_TOKEN' in os.environ}", flush=True)
    if args.wait_for:
        deadline = time.monotonic() + 60
        while not Path(args.wait_for).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    time.sleep(args.sleep)
    code = args.exit
    override = state / "next-exit"
    if override.exists():
        code = int(override.read_text().strip())
        override.unlink()
    with (state / "deploys.log").open("a") as log:
        log.write(f"{args.service} {args.environment} {args.version} {os.environ.get('DEPLOY_DEPLOY_ID')}\n")
    if code == 0:
        (state / f"{args.service}-{args.environment}.version").write_text(args.version)
        print("rollout complete", flush=True)
    else:
        print(f"error: rollout of {args.version} failed", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
