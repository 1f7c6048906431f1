"""The portal in a real headless browser (Debian's chromium driven through chromedriver
by Selenium): sign in, send and watch the message reach delivered, upload a CSV and see
its rows, refused another account's pages, sign out. Skipped where no browser is."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.hubthread import HubThread
from tests.portal import customer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    pytest.skip("no browser: install Debian's chromium and chromium-driver",
                allow_module_level=True)

from selenium.common.exceptions import (  # noqa: E402
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

# The driver's connection to chromedriver lives as long as the module's browser.
pytestmark = pytest.mark.keeps_process_fds
MakeHub = Callable[..., HubThread]
PASSWORD = "s3cret-pass!"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One browser for the module (starting one is the slow part); a fresh profile."""
    profile = tempfile.mkdtemp(prefix="smshub-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", "--window-size=390,844"):  # a phone's
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def portal(make_hub: MakeHub, browser: Any) -> Iterator[HubThread]:
    hub = make_hub()
    customer(hub, "acme", PASSWORD)
    yield hub
    browser.delete_all_cookies()


def sign_in(browser: Any, hub: HubThread, name: str = "acme") -> None:
    browser.get(f"{hub.url}/login")
    browser.find_element(By.ID, "account").send_keys(name)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "main button[type=submit]").click()
    wait(browser, lambda d: d.find_element(By.TAG_NAME, "h1").text == "Messages")


def wait(browser: Any, condition: Callable[[Any], object], seconds: float = 15) -> None:
    # A page being replaced (a click, a redirect) may drop the element under a check.
    WebDriverWait(browser, seconds, poll_frequency=0.1,
                  ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
                  ).until(condition)


def test_a_customer_signs_in_sends_and_watches_it_reach_delivered(
        portal: HubThread, browser: Any) -> None:
    sign_in(browser, portal)
    browser.find_element(By.LINK_TEXT, "Send").click()
    browser.find_element(By.ID, "to").send_keys("082 123 4567")
    browser.find_element(By.ID, "text").send_keys("Hello from the portal")
    browser.find_element(By.CSS_SELECTOR, "form[action='/send'] button").click()
    wait(browser, lambda d: d.find_element(By.TAG_NAME, "h1").text == "Sent")
    browser.find_element(By.CSS_SELECTOR, "main table a").click()  # the new message
    assert "+27821234567" in browser.find_element(By.TAG_NAME, "h1").text
    # The page updates itself (portal.js) until the simulator's report settles it.
    wait(browser, lambda d: d.find_element(By.ID, "status").text == "delivered")
    history = browser.find_element(By.CSS_SELECTOR, "#message table").text
    assert "accepted" in history and "delivered" in history


def test_an_uploaded_csv_shows_its_rows_and_progress(portal: HubThread, browser: Any,
                                                    tmp_path: Path) -> None:
    sign_in(browser, portal)
    upload = tmp_path / "customers.csv"
    upload.write_text("to,text\n0821110001,Row one\n0821110002,Row two\n12,bad number\n")
    browser.get(f"{portal.url}/send")
    browser.find_element(By.ID, "file").send_keys(str(upload))
    browser.find_element(By.CSS_SELECTOR, "form[action='/send/file'] button").click()
    wait(browser, lambda d: "customers.csv" in d.find_element(By.TAG_NAME, "h1").text)
    page = browser.find_element(By.ID, "batch").text
    assert "3 rows: 2 accepted, 1 refused" in page
    assert "+27821110001" in page and "+27821110002" in page
    wait(browser, lambda d: d.find_element(By.ID, "batch-state").text == "final")
    assert "2 delivered" in browser.find_element(By.ID, "batch").text
    browser.get(f"{portal.url}/batches")
    assert "customers.csv" in browser.find_element(By.TAG_NAME, "main").text


def test_another_accounts_pages_are_not_found_and_sign_out_ends_the_session(
        portal: HubThread, browser: Any) -> None:
    key = portal.account("beta")
    sent = httpx.post(f"{portal.url}/v1/messages", headers={"Authorization": f"Bearer {key}"},
                      json={"to": "0825550000", "text": "beta's own"})
    assert sent.status_code == 202
    sign_in(browser, portal)
    browser.get(f"{portal.url}/messages/{sent.json()['id']}")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Not found"
    assert "beta's own" not in browser.page_source
    browser.get(f"{portal.url}/messages")
    assert "0825550000" not in browser.page_source
    browser.find_element(By.CSS_SELECTOR, "form.logout button").click()
    wait(browser, lambda d: d.find_element(By.TAG_NAME, "h1").text == "Sign in")
    browser.get(f"{portal.url}/messages")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Sign in"
