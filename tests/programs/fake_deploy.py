#!/usr/bin/env python3
"""A deploy program for tests: records the deploy, "installs" the version, prints like a real one.

usage: fake_deploy.py STATE_DIR SERVICE ENVIRONMENT VERSION [--exit N] [--sleep SECONDS] [--wait-for PATH]

It appends "SERVICE ENVIRONMENT VERSION DEPLOY_ID" to STATE_DIR/deploys.log and, when it exits 0,
writes VERSION to STATE_DIR/SERVICE-ENVIRONMENT.version, which the test health server reports.
A file STATE_DIR/next-exit, if present, overrides --exit once (and is removed).
"""

import argparse
import os
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    for name in ("state_dir", "service", "environment", "version"):
        parser.add_argument(name)
    parser.add_argument("--exit", type=int, default=0)
    parser.add_argument("--sleep", type=float, default=0)
    parser.add_argument("--wait-for")
    args = parser.parse_args()
    state = Path(args.state_dir)
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
