"""`opsbot console -c '/ops help'` wall time beside importing, alone, the third-party stack it loads.

The baseline is measured, not listed by hand: a console run on a migrated database, as every run after the first
is, reports the third-party packages it loaded (everything imported from site-packages), and the baseline is a bare
`python -c "import …"` of exactly those; what such an import would pull in beyond the console's own imports (fakeredis
loads numpy, which opsbot hides from it) is kept out, so the baseline loads the modules the console loaded, no more.
Another row imports opsbot's console modules (the stack plus opsbot's own modules, nothing run), so the table shows
where the time goes: the stack, opsbot's modules, or the run itself (wiring, SQLite, the emulator, the command,
shutting down). The console starts up with the garbage collector paused and then freezes what it built (which also
spares the interpreter's last collection at exit); so does that row, and one more imports the stack that way too, for
a like-for-like ratio beside the target's (which is against the bare import). Every command
runs ``--repeat`` times, interleaved; medians and minimums are printed. The issue's target: the console's wall at most
1.2× the stack's import. Asserts nothing.

    python bench/console_startup.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.2  # issue 14: the console's wall at most 1.2× the stack's bare import

LOADED = """
import json, sys, sysconfig
sys.argv = ["opsbot", "console", "-c", "/ops help"]
from bot.cli import main
try:
    main()
except SystemExit:
    pass
site = sysconfig.get_paths()["purelib"]
modules = sorted(name for name, module in list(sys.modules.items())
                 if module is not None and (getattr(module, "__file__", None) or "").startswith(site))
names = sorted({name.split(".")[0] for name in modules if not name.startswith("_")})
sys.stderr.write("LOADED " + json.dumps(names) + "\\n")
sys.stderr.write("MODULES " + json.dumps(modules) + "\\n")
"""

# What a bare import of the stack loads from site-packages, beyond what the console loaded.
PULLED = """
import json, sys, sysconfig
site = sysconfig.get_paths()["purelib"]
for name in json.loads(sys.argv[1]):
    __import__(name)
print(json.dumps(sorted(name for name, module in list(sys.modules.items())
                        if module is not None and (getattr(module, "__file__", None) or "").startswith(site))))
"""


def kept_out(packages: list[str], loaded: set[str], cwd: Path) -> list[str]:
    """Modules a bare ``import`` of ``packages`` would load that the console run did not (optional imports the
    console avoids, like fakeredis' numpy): the outermost ones, to block in the baseline so that it imports what
    the console imported, no more."""
    found = subprocess.run([sys.executable, "-c", PULLED, json.dumps(packages)], cwd=cwd, capture_output=True, text=True)
    extra = set(json.loads(found.stdout)) - loaded
    return sorted(name for name in extra if name.rpartition(".")[0] not in extra)


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="opsbot-console-bench-") as folder:  # the console's SQLite file lands here
        measure(args.repeat, Path(folder))


def measure(repeat: int, work: Path) -> None:
    env_python = sys.executable
    # opsbot's own bytecode, as an installed package has it (pip compiles what it installs): an editable checkout run
    # with PYTHONDONTWRITEBYTECODE=1 would otherwise compile ~200 modules in every timed run (about 0.2 s each).
    subprocess.run([env_python, "-m", "compileall", "-q", "bot", "handlers", "templates"], cwd=ROOT, check=True)
    # The first run in a fresh folder creates and migrates its SQLite database (alembic loads); the timed runs below
    # find it migrated, as every later console run does. The stack is what such a run loads: the probe's second run.
    for _ in range(2):
        probe = subprocess.run([env_python, "-c", LOADED], cwd=work, capture_output=True, text=True, check=True)
    said = dict(line.split(" ", 1) for line in probe.stderr.splitlines() if line.startswith(("LOADED ", "MODULES ")))
    packages = [name for name in json.loads(said["LOADED"]) if name not in ("bot", "handlers", "templates")]
    blocked = kept_out(packages, set(json.loads(said["MODULES"])), work)
    block = f"import sys; sys.modules.update(dict.fromkeys({blocked!r})); " if blocked else ""
    opsbot = str(Path(env_python).with_name("opsbot"))

    def paused(code: str) -> str:  # as `opsbot console` starts up (bot/cli.py, _collector_paused)
        return f"import gc; gc.disable(); {code}; gc.freeze()"

    stack = block + "import " + ", ".join(packages)
    commands = {
        "import the stack": [env_python, "-c", stack],
        "  the same, collector paused": [env_python, "-c", paused(stack)],
        "import opsbot's console": [env_python, "-c", paused("import bot.cli, bot.console.shell")],
        "opsbot console -c '/ops help'": [opsbot, "console", "-c", "/ops help"],
    }
    for argv in commands.values():  # warm the file cache and the bytecode caches
        timed(argv, work)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, argv in commands.items():
            times[name].append(timed(argv, work))
    base = statistics.median(times["import the stack"])
    print(f"\n{repeat} runs each, interleaved; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}")
    print(f"the stack: {len(packages)} third-party packages the console loads: {', '.join(packages)}")
    if blocked:  # None in sys.modules: that import raises ImportError, as the console arranges for these
        print(f"kept out of the stack's import, as the console keeps them out: {', '.join(blocked)}")
    print()
    print(f"{'command':<32} {'median':>8} {'min':>8} {'× stack':>8}")
    print("-" * 60)
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<32} {median:>7.3f}s {min(values):>7.3f}s {median / base:>7.2f}x")
    paused_base = statistics.median(times["  the same, collector paused"])
    console = statistics.median(times["opsbot console -c '/ops help'"])
    verdict = "met" if console / base <= TARGET else "not met"
    print(f"\ntarget (issue 14): opsbot console's wall ≤ {TARGET}× the stack's bare import: {console / base:.2f}x, {verdict}")
    print(f"like for like (the stack imported with the collector paused, as the console does): {console / paused_base:.2f}x")


if __name__ == "__main__":
    main()
