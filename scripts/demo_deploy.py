#!/usr/bin/env python3
"""The console demo's deploy program: "installs" a version of a pretend service on this machine.

usage: demo_deploy.py SERVICE ENVIRONMENT VERSION

It writes VERSION where scripts/demo_service.py reads it, makes sure that service answers on
127.0.0.1:$DEMO_SERVICE_PORT (default 18765; started in the background if it is not running, and
it stops by itself after ten idle minutes), and prints what a deploy script would print.
The pretend service is unhealthy while it runs a version whose name contains "broken".
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
PORT = int(os.environ.get("DEMO_SERVICE_PORT", "18765"))
STATE = Path(os.environ.get("DEMO_STATE_DIR") or Path(tempfile.gettempdir()) / "opsbot-deploys-demo")


def answering() -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/ping", timeout=0.5) as response:
            return response.read() == b"opsbot-demo-service"
    except OSError:
        return False


def ensure_service() -> bool:
    if answering():
        return True
    subprocess.Popen(
        [sys.executable, str(HERE / "demo_service.py"), str(PORT), str(STATE)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if answering():
            return True
        time.sleep(0.1)
    return False


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    service, environment, version = sys.argv[1:]
    STATE.mkdir(parents=True, exist_ok=True)
    print(f"deploying {service} {version} to {environment}", flush=True)
    for step in (f"pulling image {service}:{version}", "rolling out 1/3", "rolling out 2/3", "rolling out 3/3"):
        time.sleep(0.2)
        print(step, flush=True)
    (STATE / f"{service}-{environment}.version").write_text(version)
    if not ensure_service():
        print(f"error: the demo service did not come up on 127.0.0.1:{PORT} (is the port taken?)", file=sys.stderr)
        return 1
    print(f"{service} {version} is live in {environment}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
