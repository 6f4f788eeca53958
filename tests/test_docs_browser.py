"""`/docs` works without the internet: a real headless Chromium, its network cut off (every host but
the server's loopback address goes to a dead proxy and resolves to nothing), loads the page from a
running server, renders each model's predict operation, and "Try it out" → "Execute" on one model
shows its prediction. The screenshot is kept in test-artifacts/ at the top of the checkout."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from factories import IRIS_ROWS, TEXTS, iris_classifier, save_cloudpickle, save_pickle
from factories import text_pipeline as make_text_pipeline
from projects import Project
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait
from server_support import ServerProcess, running_server

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
REQUIRE_ENV = "AMMS_REQUIRE_BROWSER"
CUT_OFF = (
    "--proxy-server=http://127.0.0.1:9",  # nothing listens there; loopback itself bypasses proxies
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
)


def _tools_or_skip() -> tuple[str, str]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    reason = "chromium and chromedriver are not installed (scripts/system-deps.sh installs them)"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason}; {REQUIRE_ENV}=1, so the browser test must not skip")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("docs")
    project = Project.init(folder)
    project.add(save_pickle(folder / "iris.pkl", iris_classifier()), "iris", example=IRIS_ROWS[:1])
    project.add(save_cloudpickle(folder / "text.pkl", make_text_pipeline()), "text", example=TEXTS[:1])
    with running_server(project.config) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    chromium, driver_path = _tools_or_skip()
    options = Options()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,2600", *CUT_OFF):
        options.add_argument(argument)
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not try to download a driver
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_the_page_names_no_other_host(server: ServerProcess) -> None:
    html = httpx.get(f"{server.url}/docs", timeout=10).text
    assert re.findall(r"https?://", html) == [], html
    for asset in re.findall(r'(?:src|href)="([^"]+)"', html):
        answer = httpx.get(f"{server.url}{asset}", timeout=10)
        assert answer.status_code == 200, asset
        assert answer.headers["cache-control"] == "public, max-age=86400"


def test_docs_render_and_try_it_out_predicts_offline(server: ServerProcess, browser: webdriver.Chrome) -> None:
    with pytest.raises(WebDriverException, match=r"ERR_PROXY_CONNECTION_FAILED|ERR_NAME_NOT_RESOLVED"):
        browser.get("http://example.com/")  # proof that the browser's network is cut off

    browser.get(f"{server.url}/docs")
    wait = WebDriverWait(browser, 30)
    paths = _rendered_paths(browser, wait)
    assert {"/models/iris/predict", "/models/text/predict"} <= paths

    operation = _operation(browser, "/models/iris/predict")
    operation.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    wait.until(lambda _: operation.find_elements(By.CSS_SELECTOR, "button.try-out__btn"))
    operation.find_element(By.CSS_SELECTOR, "button.try-out__btn").click()
    wait.until(lambda _: operation.find_elements(By.CSS_SELECTOR, "button.execute"))
    operation.find_element(By.CSS_SELECTOR, "button.execute").click()
    body = wait.until(lambda _: _live_response(operation))
    answer = operation.find_element(By.CSS_SELECTOR, ".live-responses-table")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", answer)
    browser.save_screenshot(str(_artifact("docs-try-it-out.png")))

    assert body["outputs"] == iris_classifier().predict(IRIS_ROWS[:1]).tolist()
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert resources and all(name.startswith(server.url) for name in resources), resources


def _rendered_paths(browser: webdriver.Chrome, wait: WebDriverWait[Any]) -> set[str]:
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".opblock-summary-path")))
    elements = browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
    return {element.get_attribute("data-path") or element.text for element in elements}


def _operation(browser: webdriver.Chrome, path: str) -> WebElement:
    summary = f".//*[contains(@class, 'opblock-summary-path')][@data-path='{path}']"
    return browser.find_element(By.XPATH, f"//div[contains(@class, 'opblock ')][{summary}]")


def _live_response(operation: WebElement) -> dict[str, Any] | None:
    """The JSON body Swagger UI shows after Execute, once it is there."""
    codes = operation.find_elements(By.CSS_SELECTOR, ".live-responses-table tbody .response-col_status")
    bodies = operation.find_elements(By.CSS_SELECTOR, ".live-responses-table tbody .highlight-code pre")
    if not codes or not bodies or codes[0].text.strip() != "200":
        return None
    try:
        return json.loads(bodies[0].text)  # type: ignore[no-any-return]
    except json.JSONDecodeError:
        return None


def _artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name
