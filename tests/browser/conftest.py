"""Headless Chromium for the status page tests: Debian's ``chromium`` driven by its ``chromedriver`` through Selenium
(never a browser download), and axe-core from npm (``package.json`` / ``package-lock.json`` here), installed with
``npm ci`` into a cache outside the clone ($OPSBOT_AXE_HOME, default ~/.cache/opsbot-axe/<lock digest>).

A machine without chromium, chromedriver or npm stops the run with one line naming what to install; nothing skips.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from filelock import FileLock
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.servers import SharedServers

HERE = Path(__file__).resolve().parent
CHROMIUM = Path(os.environ.get("OPSBOT_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("OPSBOT_CHROMEDRIVER", "/usr/bin/chromedriver"))
INSTALL_BROWSER = "apt install chromium chromium-driver"
Browser = Callable[..., webdriver.Chrome]


@pytest.fixture(scope="session")
def chromium(servers: SharedServers) -> tuple[Path, Path]:
    """(chromium, chromedriver); the run stops with the apt line when either is missing."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        servers.fatal(f"The status page's browser tests need headless Chromium ({', '.join(missing)} missing): {INSTALL_BROWSER}")
    return CHROMIUM, CHROMEDRIVER


@pytest.fixture
def browser(chromium: tuple[Path, Path], tmp_path: Path) -> Iterator[Browser]:
    """``browser(timezone="Asia/Tokyo", javascript=True)``: a headless Chromium whose process runs in ``timezone``."""
    started: list[webdriver.Chrome] = []

    def start(timezone: str = "UTC", javascript: bool = True) -> webdriver.Chrome:
        binary, driver = chromium
        options = webdriver.ChromeOptions()
        options.binary_location = str(binary)
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--lang=en-US"):
            options.add_argument(argument)
        options.add_argument(f"--user-data-dir={tmp_path / f'chromium-{len(started)}'}")
        if not javascript:
            options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
        # chromedriver starts chromium with its own environment: TZ here is the browser's time zone.
        service = Service(
            executable_path=str(driver),
            env={**os.environ, "TZ": timezone},
            log_output=str(tmp_path / f"chromedriver-{len(started)}.log"),
        )
        session = webdriver.Chrome(options=options, service=service)
        started.append(session)
        return session

    yield start
    for session in started:
        session.quit()


def _axe_home() -> Path:
    lock = (HERE / "package-lock.json").read_bytes()
    default = Path.home() / ".cache" / "opsbot-axe" / hashlib.sha256(lock).hexdigest()[:12]
    return Path(os.environ["OPSBOT_AXE_HOME"]) if os.environ.get("OPSBOT_AXE_HOME") else default


@pytest.fixture(scope="session")
def axe_source(servers: SharedServers) -> str:
    """axe.min.js, installed once per lock file with ``npm ci`` (the run stops with the apt line when npm is missing)."""
    home = _axe_home()
    script = home / "node_modules" / "axe-core" / "axe.min.js"
    home.mkdir(parents=True, exist_ok=True)
    with FileLock(str(home / ".install.lock")):
        if not script.exists():
            npm = shutil.which("npm")
            if npm is None:
                servers.fatal("The accessibility test needs axe-core from npm, and npm is not installed: apt install nodejs npm")
            for name in ("package.json", "package-lock.json"):
                shutil.copy(HERE / name, home / name)
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=home, capture_output=True, text=True, timeout=300
            )
            if done.returncode != 0 or not script.exists():
                pytest.fail(f"npm ci for axe-core failed in {home}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}", pytrace=False)
    return script.read_text(encoding="utf-8")
