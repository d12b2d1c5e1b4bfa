"""Throwaway Redis, PostgreSQL and Unleash servers for the suite, started only when nothing answers.

The suite talks to real servers (README, Tests). A session fixture asks ``SharedServers.url`` for
one: when something listens at the configured URL, that URL is used as it is; when nothing does, a
server of our own is started from the installed binaries on a free loopback port with a temporary
data directory, and stopped when the run ends. When the binary is not installed either, the run
stops at once with one line naming what to install.

Under pytest-xdist every worker asks for the same servers. The first worker to ask starts one while
holding a file lock in the run's shared directory and writes down its URL; the others wait on the
lock and read it (pytest-xdist's "Making session-scoped fixtures execute only once" pattern). That
directory belongs to the controller process (or to the only process, without xdist), which stops
the servers in ``pytest_unconfigure``: after every worker has finished, so none loses a server it
still uses.

Why not pytest-redis and pytest-postgresql: their process fixtures start one server per process
(per xdist worker), whether or not one already answers at the configured URL, and pytest-postgresql
runs ``pg_ctl`` as the current user, which PostgreSQL refuses to do as root (its issue #455), as CI
here runs. What is left to write is small: find the binary, pick a port, start, wait, stop.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import pytest
import redis
import sqlalchemy as sa
from filelock import FileLock

from tests.conftest import DEFAULT_REDIS_URL, _pg_admin_url

REPO = Path(__file__).resolve().parents[1]
UNLEASH_SCRIPT = REPO / "scripts" / "unleash-server.sh"
FATAL = "fatal.txt"  # a worker writes the one line here; the controller stops the run with it
EXIT_CODE = pytest.ExitCode.USAGE_ERROR  # the machine lacks something the run needs: not a test failure
START_TIMEOUT_S = 60.0  # how long a started Redis or PostgreSQL may take to answer


class NotInstalled(Exception):
    """Nothing answers and the server cannot be started here; the message is the one line the run stops with."""


class StartFailed(Exception):
    """The server is installed but did not start; the message says why (with its log's last lines)."""


@dataclass
class Started:
    """A server this run started: its URL, and what ``stop_server`` needs to stop it (JSON-able)."""

    url: str
    stop: dict[str, Any] = field(default_factory=dict)


class SharedServers:
    """The servers one test run shares across its processes; registered as a plugin by ``pytest_configure``.

    ``directory`` holds, per server name, a lock and a JSON state file:
    ``{"url": …}`` (a server that was already there), ``{"url": …, "stop": {…}, "at": epoch seconds}``
    (one we started), ``{"fatal": line}`` or ``{"error": text}`` (it could not be had).
    """

    def __init__(self, config: pytest.Config) -> None:
        workerinput = getattr(config, "workerinput", None)
        self.owner = workerinput is None  # the controller, or the only process
        if workerinput is None:
            self.directory = Path(tempfile.mkdtemp(prefix="opsbot-test-servers-"))
        else:
            self.directory = Path(workerinput["opsbot_servers_dir"])

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """(xdist controller) Hand the shared directory to each worker."""
        node.workerinput["opsbot_servers_dir"] = str(self.directory)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # A worker cannot end the whole run (pytest.exit there is an xdist internal error), so it
        # writes the line down and fails its test; the controller ends the run at that report.
        if self.owner and (self.directory / FATAL).exists():
            pytest.exit((self.directory / FATAL).read_text(encoding="utf-8"), returncode=EXIT_CODE)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.owner:
            for path in sorted(self.directory.glob("*.json")):
                state = json.loads(path.read_text(encoding="utf-8"))
                if "stop" in state:
                    terminalreporter.write_line(
                        f"{path.stem}: nothing answered at the configured URL; "
                        f"this run started its own at {state['url']} (stopped at the end)"
                    )

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.owner:
            self.stop_all()
            shutil.rmtree(self.directory, ignore_errors=True)

    def url(self, name: str, configured: str, *, answers: Callable[[], bool], start: Callable[[], Started]) -> str:
        """The URL of server ``name``: ``configured`` when ``answers()``, else one ``start()`` started for this run.

        Every process of the run gets the same answer; only the first one to ask probes or starts.
        A missing binary ends the run with one line; a failed start fails the tests that need it.
        """
        with FileLock(str(self.directory / f"{name}.lock")):
            state_file = self.directory / f"{name}.json"
            if state_file.exists():
                state = json.loads(state_file.read_text(encoding="utf-8"))
            else:
                state = _probe_or_start(configured, answers, start)
                state_file.write_text(json.dumps(state), encoding="utf-8")
        if "fatal" in state:
            self.fatal(state["fatal"])
        if "error" in state:
            pytest.fail(state["error"], pytrace=False)
        return str(state["url"])

    def fatal(self, line: str) -> NoReturn:
        """End the run with ``line`` (from a worker: through the controller, see ``pytest_runtest_logreport``)."""
        if self.owner:
            pytest.exit(line, returncode=EXIT_CODE)
        (self.directory / FATAL).write_text(line, encoding="utf-8")
        pytest.fail(line, pytrace=False)

    def stop_all(self) -> None:
        """Stop every server this run started, the last started first (Unleash before its PostgreSQL)."""
        states = [json.loads(p.read_text(encoding="utf-8")) for p in self.directory.glob("*.json")]
        for state in sorted((s for s in states if "stop" in s), key=lambda s: s["at"], reverse=True):
            stop_server(state["stop"])


def _probe_or_start(configured: str, answers: Callable[[], bool], start: Callable[[], Started]) -> dict[str, Any]:
    if answers():
        return {"url": configured}
    try:
        started = start()
    except NotInstalled as exc:
        return {"fatal": str(exc)}
    except StartFailed as exc:
        return {"error": str(exc)}
    return {"url": started.url, "stop": started.stop, "at": time.time()}


def listening(url: str, default_port: int) -> bool:
    """Whether something accepts TCP connections at ``url``'s host and port (loopback when it names none)."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def safe_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(ready: Callable[[], bool], alive: Callable[[], bool], what: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if ready():
            return
        if not alive():
            break
        time.sleep(0.1)
    raise StartFailed(f"{what} did not come up; last lines of {log}:\n{_tail(log)}")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ----- Redis -----


def start_redis(configured: str) -> Started:
    """A ``redis-server`` on a free loopback port, no persistence, its files in a temporary directory.

    Raises NotInstalled when ``redis-server`` is not on PATH, StartFailed when it does not answer.
    """
    exe = shutil.which("redis-server")
    if exe is None:
        raise NotInstalled(
            f"Redis is not running at {safe_url(configured)} and redis-server is not installed: "
            "apt install redis-server (or set REDIS_URL)"
        )
    workdir = Path(tempfile.mkdtemp(prefix="opsbot-test-redis-"))
    port = free_port()
    pidfile, log = workdir / "redis.pid", workdir / "redis.log"
    launched = subprocess.run(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--daemonize",
            "yes",
            "--pidfile",
            str(pidfile),
            "--logfile",
            str(log),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if launched.returncode != 0:
        raise StartFailed(f"redis-server did not start: {launched.stderr.strip() or launched.stdout.strip()}")
    url = f"redis://127.0.0.1:{port}/0"
    _wait(lambda: _redis_answers(url), lambda: not pidfile.exists() or _pid_alive(pidfile), "redis-server", log)
    return Started(url, {"kind": "redis", "url": url, "pidfile": str(pidfile), "dir": str(workdir)})


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def _pid_alive(pidfile: Path) -> bool:
    try:
        os.kill(int(pidfile.read_text().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


def _stop_redis(stop: dict[str, Any]) -> None:
    try:
        redis.Redis.from_url(stop["url"], socket_connect_timeout=2).shutdown(nosave=True)
    except redis.ConnectionError:
        pass  # the server closes the connection as it exits
    except redis.RedisError:
        pidfile = Path(stop["pidfile"])
        if pidfile.exists():
            os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
    shutil.rmtree(stop["dir"], ignore_errors=True)


# ----- PostgreSQL -----


def _pg_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``: PATH first, else the newest /usr/lib/postgresql/*/bin."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Path(initdb).resolve().parent
    found = [
        Path(d) for d in glob.glob("/usr/lib/postgresql/*/bin") if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists()
    ]
    return max(found, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0) if found else None


def start_postgresql(configured: str) -> Started:
    """A PostgreSQL cluster (superuser ``postgres``, trust auth) on a free loopback port in a temporary directory.

    PostgreSQL refuses to run as root, so as root the cluster belongs to, and runs as, the
    ``postgres`` OS user. Durability is off (fsync, full-page writes): the data is thrown away.
    Raises NotInstalled when initdb/pg_ctl are missing (or, as root, the ``postgres`` user is),
    StartFailed when the cluster does not start.
    """
    bindir = _pg_bindir()
    where = f"PostgreSQL is not running at {safe_url(configured)}"
    if bindir is None:
        raise NotInstalled(
            f"{where} and initdb/pg_ctl are not installed (looked on PATH and in /usr/lib/postgresql/*/bin): "
            "apt install postgresql (or set TEST_DATABASE_URL)"
        )
    run_as: str | None = None
    data = Path(tempfile.mkdtemp(prefix="opsbot-test-pg-"))
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise NotInstalled(
                f"{where}, and as root a throwaway cluster needs the 'postgres' OS user, which does not exist: "
                "apt install postgresql, or run the tests as another user"
            ) from None
        os.chown(data, owner.pw_uid, owner.pw_gid)
        run_as = "postgres"
    log = data / "server.log"
    initdb = _run_pg(
        [
            str(bindir / "initdb"),
            "-D",
            str(data / "db"),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-locale",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        run_as,
        data,
    )
    if initdb.returncode != 0:
        raise StartFailed(f"initdb failed: {initdb.stderr.strip()[-2000:]}")
    port = free_port()
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -k {data} -c max_connections=200 "
        "-c fsync=off -c full_page_writes=off -c synchronous_commit=off"
    )
    started = _run_pg(
        [
            str(bindir / "pg_ctl"),
            "start",
            "-w",
            "-t",
            str(int(START_TIMEOUT_S)),
            "-D",
            str(data / "db"),
            "-l",
            str(log),
            "-o",
            options,
        ],
        run_as,
        data,
    )
    stop = {"kind": "postgresql", "pg_ctl": str(bindir / "pg_ctl"), "data": str(data), "run_as": run_as}
    if started.returncode != 0:
        stop_server(stop)
        raise StartFailed(f"pg_ctl start failed: {started.stderr.strip()[-2000:]}\n{_tail(log)}")
    return Started(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", stop)


def _run_pg(argv: list[str], run_as: str | None, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL program, as the OS user ``run_as`` (its own group, no others) when given."""
    who: dict[str, Any] = {}
    if run_as is not None:
        who = {"user": run_as, "group": pwd.getpwnam(run_as).pw_gid, "extra_groups": []}
    return subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=START_TIMEOUT_S + 30, check=False, stdin=subprocess.DEVNULL, **who
    )


def _stop_postgresql(stop: dict[str, Any]) -> None:
    data = Path(stop["data"])
    if (data / "db" / "postmaster.pid").exists():
        _run_pg([stop["pg_ctl"], "stop", "-D", str(data / "db"), "-m", "fast", "-w"], stop["run_as"], data)
    shutil.rmtree(data, ignore_errors=True)


# ----- Unleash -----


def start_unleash(configured: str, pg_url: str) -> Started:
    """A real Unleash (scripts/unleash-server.sh) on a free loopback port, its database on the PostgreSQL at ``pg_url``.

    The npm install is cached in $UNLEASH_HOME (default ~/.cache/opsbot-unleash, as .ci/run uses).
    Raises NotInstalled when Node.js or npm is missing, StartFailed when the script fails.
    """
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise NotInstalled(
            f"Unleash is not running at {configured} and Node.js/npm are not installed: "
            "apt install nodejs npm (Node 20 or newer; or set UNLEASH_URL)"
        )
    db = urlsplit(pg_url)
    port = free_port()
    env = {
        **os.environ,
        "UNLEASH_PORT": str(port),
        "UNLEASH_HOME": _unleash_home(),
        "UNLEASH_DB_HOST": db.hostname or "127.0.0.1",
        "UNLEASH_DB_PORT": str(db.port or 5432),
        "UNLEASH_DB_USER": db.username or "postgres",
        "UNLEASH_DB_PASSWORD": db.password or "",
    }
    try:
        started = subprocess.run(
            ["bash", str(UNLEASH_SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=600, check=False
        )
    except subprocess.TimeoutExpired:
        raise StartFailed("Unleash did not start within 10 minutes (scripts/unleash-server.sh start)") from None
    if started.returncode != 0:
        raise StartFailed(f"Unleash could not be started with scripts/unleash-server.sh start:\n{started.stderr[-3000:]}")
    return Started(f"http://127.0.0.1:{port}", {"kind": "unleash", "port": port, "home": env["UNLEASH_HOME"]})


def _unleash_home() -> str:
    return os.environ.get("UNLEASH_HOME") or str(Path.home() / ".cache" / "opsbot-unleash")


def _stop_unleash(stop: dict[str, Any]) -> None:
    env = {**os.environ, "UNLEASH_PORT": str(stop["port"]), "UNLEASH_HOME": stop["home"]}
    subprocess.run(["bash", str(UNLEASH_SCRIPT), "stop"], env=env, capture_output=True, timeout=60, check=False)
    Path(stop["home"], f"server-{stop['port']}.log").unlink(missing_ok=True)  # its port was a free one: never reused


def stop_server(stop: dict[str, Any]) -> None:
    """Stop a server this run started, from the ``stop`` part of its state; a server already gone is fine."""
    {"redis": _stop_redis, "postgresql": _stop_postgresql, "unleash": _stop_unleash}[stop["kind"]](stop)


@pytest.fixture(scope="session")
def redis_url(servers: SharedServers) -> str:
    """Redis for the tests: $REDIS_URL (default 127.0.0.1:6379), or a throwaway one when nothing listens there."""
    configured = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    url = servers.url("redis", configured, answers=lambda: listening(configured, 6379), start=lambda: start_redis(configured))
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"Redis is required for these tests and does not answer at {safe_url(url)} ({exc}); fix it or set REDIS_URL",
            pytrace=False,
        )
    return url


@pytest.fixture(scope="session")
def pg_admin_url(servers: SharedServers) -> str:
    """A PostgreSQL superuser URL: $TEST_DATABASE_URL (else a PostgreSQL $DATABASE_URL, else 127.0.0.1:5432),
    or a throwaway cluster when nothing listens there."""
    configured = _pg_admin_url()
    url = servers.url(
        "postgresql", configured, answers=lambda: listening(configured, 5432), start=lambda: start_postgresql(configured)
    )
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except sa.exc.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is required for these tests and does not answer at {safe_url(url)} ({str(exc.orig).strip()}); "
            "fix it or set TEST_DATABASE_URL",
            pytrace=False,
        )
    return url


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(SharedServers(config), "opsbot-servers")


@pytest.fixture(scope="session")
def servers(pytestconfig: pytest.Config) -> SharedServers:
    """This run's shared servers (see the module docstring)."""
    plugin = pytestconfig.pluginmanager.get_plugin("opsbot-servers")
    assert isinstance(plugin, SharedServers)
    return plugin
