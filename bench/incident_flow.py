"""Slack Web API calls and wall time per incident command, through the console's real app and emulator.

Runs declare → update → update → timeline → resolve N times in one process (SQLite in a temporary
directory, in-process Redis, the local Slack emulator) and prints, per command: the Web API calls it
made (by method) and the wall time from the signed request to the last message it posted (p50/max).
It prints figures; it asserts nothing.

    python bench/incident_flow.py            # 20 incidents
    python bench/incident_flow.py --runs 50
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.adapters.sql.engine import upgrade  # noqa: E402
from bot.config import load_config  # noqa: E402
from bot.console.shell import ConsoleSession  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.wiring import build_services  # noqa: E402

STEPS = [
    ("declare", '/ops incident declare P1 "Checkout errors {n}" --service api --impact "5% of checkouts fail"'),
    ("update", '/ops incident update identified "Bad config in v1.4.2" --next 30m'),
    ("update", '/ops incident update monitoring "Rolled back to v1.4.1"'),
    ("timeline", "/ops incident timeline"),
    ("resolve", '/ops incident resolve "Config reverted"'),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        upgrade(url)
        settings = Settings(database_url=url, opsbot_config=ROOT / "opsbot.example.yml")
        config = load_config(settings.opsbot_config)
        # No escalation contacts: the figures are for the commands alone.
        config = config.model_copy(update={"incidents": config.incidents.model_copy(update={"escalation": []})})
        session = ConsoleSession(settings, lambda s: build_services(s, config=config, allow_embedded_redis=True), user="U0ADMIN")
        calls: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        times: dict[str, list[float]] = collections.defaultdict(list)
        counts: collections.Counter[str] = collections.Counter()
        try:
            for n in range(args.runs):
                session.channel = "C0CONSOLE"
                for name, line in STEPS:
                    before = len(session.emulator.calls)
                    started = time.perf_counter()
                    session.run_line(line.format(n=n))
                    times[name].append(time.perf_counter() - started)
                    counts[name] += 1
                    calls[name].update(c.method for c in session.emulator.calls[before:])
                    if name == "declare":
                        session.run_line("in inc-")
        finally:
            session.close()
    print(f"{args.runs} incidents; Web API calls per command (mean) and wall time until its last post")
    for name in dict.fromkeys(n for n, _ in STEPS):
        per = {method: count / counts[name] for method, count in sorted(calls[name].items())}
        total = sum(per.values())
        spread = ", ".join(f"{m} {c:g}" for m, c in per.items())
        ms = sorted(t * 1000 for t in times[name])
        print(f"  {name:9s} {total:4.1f} calls ({spread}) · p50 {statistics.median(ms):6.1f} ms · max {ms[-1]:6.1f} ms")


if __name__ == "__main__":
    main()
