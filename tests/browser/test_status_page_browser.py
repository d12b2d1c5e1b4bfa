"""The public status page in a real headless Chromium, served by the real WSGI app on real Redis and PostgreSQL.

Every test starts from ``tests.status_kit.published_state``: api degraded, web operational, worker unknown, and
INC-1 with internal text marked ``SECRET`` and one public update.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis
from selenium.webdriver.common.by import By

from bot.console.slack_emulator import SlackEmulator
from tests.browser.conftest import Browser
from tests.status_kit import PUBLIC_TEXT, SECRET, TITLE, fixed_clock, published_state, serving, status_config
from tests.support import Bot, make_config

BLOCKING = {"serious", "critical"}


@pytest.fixture
def published(emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str) -> Bot:
    bot = Bot(
        emulator=emulator,
        db_url=pg_url,
        redis_client=redis_client,
        prefix=redis_prefix,
        config=make_config(**status_config()),
        clock=fixed_clock(),
    )
    published_state(bot)
    return bot


def service_row(driver: Any, name: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, f'li.service[data-service="{name}"]').text)


def test_chromium_shows_the_degraded_service_and_the_public_update_in_the_viewers_time(
    published: Bot, browser: Browser, tmp_path: Path
) -> None:
    driver = browser(timezone="Asia/Tokyo")
    with serving(published) as base:
        driver.get(base + "/status")
        driver.save_screenshot(str(tmp_path / "status.png"))
        body = driver.find_element(By.TAG_NAME, "body").text
    assert driver.title == TITLE
    assert "Some services are degraded" in body
    assert "Degraded performance" in service_row(driver, "api")
    assert "Operational" in service_row(driver, "web")
    assert "State unknown" in service_row(driver, "worker")
    incident = driver.find_element(By.CSS_SELECTOR, "article.incident").text
    assert "INC-1: api" in incident and PUBLIC_TEXT in incident and "Identified" in incident
    assert SECRET not in body and SECRET not in driver.page_source
    # 14:00 UTC is 23:00 in Tokyo: the script wrote it beside the UTC time.
    started = driver.find_element(By.CSS_SELECTOR, 'article.incident time[datetime="2026-11-23T14:00:00Z"]')
    assert started.text == "2026-11-23 14:00 UTC"
    local = started.find_element(By.XPATH, "following-sibling::span[@class='local-time']").text
    assert "23:00" in local and "GMT+9" in local and "your time" in local, local


def test_without_javascript_the_page_shows_everything_in_utc(published: Bot, browser: Browser) -> None:
    driver = browser(timezone="Asia/Tokyo", javascript=False)
    with serving(published) as base:
        driver.get(base + "/status")
        body = driver.find_element(By.TAG_NAME, "body").text
    assert "Degraded performance" in service_row(driver, "api") and PUBLIC_TEXT in body
    assert "2026-11-23 14:00 UTC" in body
    assert driver.find_elements(By.CSS_SELECTOR, ".local-time") == [] and "your time)" not in body


def test_the_page_has_no_serious_or_critical_accessibility_violations(
    published: Bot, browser: Browser, axe_source: str, tmp_path: Path
) -> None:
    driver = browser()
    with serving(published) as base:
        driver.get(base + "/status")
        driver.execute_script(axe_source)
        # Every rule axe-core ships runs: no rule is disabled, no tag filter narrows them.
        results = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document).then(r => done({violations: r.violations, passes: r.passes.length, version: axe.version}),"
            " e => done({error: String(e)}));"
        )
    (tmp_path / "axe.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    assert "error" not in results, results
    assert results["passes"] > 10  # axe really ran over the page
    blocking = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]]) for v in results["violations"] if v["impact"] in BLOCKING
    ]
    assert blocking == [], blocking
    print(f"axe-core {results['version']}: {results['passes']} rules pass, {len(results['violations'])} minor/moderate findings")
