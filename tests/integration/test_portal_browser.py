"""The portal in a real headless browser (Debian's chromium driven through chromedriver
by Selenium) at a phone's width: a customer signs in, sends and watches the message reach
delivered, uploads a CSV and watches its progress, finds every page fitting the phone,
works it with the keyboard alone, is refused another account's pages and the operators';
an operator signs in with the keyboard, adds credit, sees a carrier's binds, the queue
chart, a batch's progress and a message's audit trail. Skipped where no browser is."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from hub import accounts
from hub.config import CarrierTable
from tests.hubthread import HubThread
from tests.integration.conftest import test_config as hub_config
from tests.portal import OPERATOR_PASSWORD, customer, operator
from tests.portal import csrf as portal_csrf
from tests.portal import sign_in as portal_sign_in
from tests.smsc.thread import smsc_in_thread

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    pytest.skip("no browser: install Debian's chromium and chromium-driver",
                allow_module_level=True)

from selenium.common.exceptions import (  # noqa: E402
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

# The driver's connection to chromedriver lives as long as the module's browser.
pytestmark = pytest.mark.keeps_process_fds
MakeHub = Callable[..., HubThread]
PASSWORD = "s3cret-pass!"
T = TypeVar("T")
PHONE = {"width": 390, "height": 844}  # CSS pixels of a common phone's screen


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One browser for the module (starting one is the slow part); a fresh profile."""
    profile = tempfile.mkdtemp(prefix="smshub-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(20)
    # A phone's screen, as chromium's device mode has it: --window-size=390,844 gave
    # pages 500 px, headless chromium's narrowest window.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {**PHONE, "deviceScaleFactor": 3, "mobile": True})
    assert driver.execute_script("return screen.width") == PHONE["width"]
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


# chromedriver's word, now and then, for an element whose page was replaced between
# finding it and reading it (a click's navigation committing in between): an "unknown
# error", not a stale element (SeleniumHQ/selenium#15401).
DETACHED = "Node with given id does not belong to the document"


def wait(browser: Any, condition: Callable[[Any], object], seconds: float = 15) -> None:
    # A page being replaced (a click, a redirect) may drop the element under a check.
    def check(driver: Any) -> object:
        try:
            return condition(driver)
        except WebDriverException as exc:
            if DETACHED not in str(exc.msg):
                raise
            return False

    WebDriverWait(browser, seconds, poll_frequency=0.1,
                  ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
                  ).until(check)


def read(browser: Any, get: Callable[[Any], T]) -> T:
    """What `get` reads off the page now, read again if the part it reads is replaced
    under it: portal.js rewrites the live parts (#batch, #batches, #messages) every 2 s."""
    found: list[T] = []

    def once(driver: Any) -> bool:
        found[:] = [get(driver)]
        return True

    wait(browser, once)
    return found[0]


def test_a_customer_signs_in_sends_and_watches_it_reach_delivered(
        portal: HubThread, browser: Any) -> None:
    sign_in(browser, portal)
    browser.find_element(By.LINK_TEXT, "Send").click()
    browser.find_element(By.ID, "to").send_keys("082 123 4567")
    browser.find_element(By.ID, "text").send_keys("Hello from the portal")
    browser.find_element(By.CSS_SELECTOR, "form[action='/send'] button").click()
    wait(browser, lambda d: d.find_element(By.TAG_NAME, "h1").text == "Sent")
    browser.find_element(By.CSS_SELECTOR, "main table a").click()  # the new message
    wait(browser, lambda d: "+27821234567" in d.find_element(By.TAG_NAME, "h1").text)
    # The page updates itself (portal.js) until the simulator's report settles it.
    wait(browser, lambda d: d.find_element(By.ID, "status").text == "delivered")
    history = browser.find_element(By.CSS_SELECTOR, "#message table").text
    assert "accepted" in history and "delivered" in history
    assert fits_the_phone(browser)


def test_an_uploaded_csv_shows_its_rows_and_its_progress_live(admin: HubThread, browser: Any,
                                                             tmp_path: Path) -> None:
    sign_in(browser, admin)  # reports come 3 s after each message: progress can be seen
    upload = tmp_path / "customers.csv"
    upload.write_text("to,text\n0821110001,Row one\n0821110002,Row two\n12,bad number\n")
    browser.get(f"{admin.url}/send")
    browser.find_element(By.ID, "file").send_keys(str(upload))
    browser.find_element(By.CSS_SELECTOR, "form[action='/send/file'] button").click()
    wait(browser, lambda d: "customers.csv" in d.find_element(By.TAG_NAME, "h1").text)
    page, value, most, state = read(browser, lambda d: (
        d.find_element(By.ID, "batch").text,
        d.find_element(By.ID, "progress").get_attribute("value"),
        d.find_element(By.ID, "progress").get_attribute("max"),
        d.find_element(By.ID, "batch-state").text))
    assert "3 rows: 2 accepted, 1 refused" in page
    assert "+27821110001" in page and "+27821110002" in page
    assert (value, most, state) == ("0", "2", "accepted")
    # portal.js brings the page up to date without a reload until the batch is final.
    wait(browser, lambda d: d.find_element(By.ID, "batch-state").text == "final")
    assert browser.find_element(By.ID, "progress").get_attribute("value") == "2"
    assert "2 delivered" in browser.find_element(By.ID, "batch").text
    assert fits_the_phone(browser)
    # The list of batches follows a batch's state live too.
    browser.get(f"{admin.url}/send")
    browser.find_element(By.ID, "file").send_keys(str(upload))
    browser.find_element(By.CSS_SELECTOR, "form[action='/send/file'] button").click()
    wait(browser, lambda d: "customers.csv" in d.find_element(By.TAG_NAME, "h1").text)
    browser.find_element(By.LINK_TEXT, "Batches").click()
    wait(browser, lambda d: d.find_element(By.TAG_NAME, "h1").text == "Batches")
    assert read(browser, lambda d: [s.text for s in d.find_elements(
        By.CSS_SELECTOR, "#batches .batch-state")]) == ["accepted", "final"]  # newest first
    wait(browser, lambda d: [s.text for s in d.find_elements(
        By.CSS_SELECTOR, "#batches .batch-state")] == ["final", "final"])
    bars = browser.find_elements(By.CSS_SELECTOR, "#batches progress")
    assert [b.get_attribute("value") for b in bars] == ["2", "2"]
    assert fits_the_phone(browser)


def test_every_customer_page_fits_the_phone_and_works_from_the_keyboard(
        portal: HubThread, browser: Any) -> None:
    browser.get(f"{portal.url}/login")
    assert fits_the_phone(browser)
    focused = browser.switch_to.active_element
    assert focused.get_attribute("id") == "account"  # autofocus
    focused.send_keys("acme", Keys.TAB)
    browser.switch_to.active_element.send_keys(PASSWORD, Keys.ENTER)
    wait(browser, lambda d: d.find_element(By.TAG_NAME, "h1").text == "Messages")
    links = browser.find_elements(By.CSS_SELECTOR, "header nav a")
    pages = [a.get_attribute("pathname") for a in links]
    assert len(pages) == 8
    for path in pages:
        browser.get(f"{portal.url}{path}")
        assert browser.find_element(By.CSS_SELECTOR, "nav a[aria-current=page]"), path
        assert fits_the_phone(browser), path
    # From the top of a page: Tab reaches "Skip to content" first, and Enter on it takes
    # focus past the header to the page's own content.
    browser.get(f"{portal.url}/send")
    ActionChains(browser).send_keys(Keys.TAB).perform()
    skip = browser.switch_to.active_element
    assert skip.text == "Skip to content" and skip.is_displayed()
    outline = browser.execute_script(
        "var s = getComputedStyle(arguments[0]); return [s.outlineStyle, s.outlineWidth]",
        skip)
    assert outline == ["solid", "3px"]  # focus is seen
    skip.send_keys(Keys.ENTER)
    ActionChains(browser).send_keys(Keys.TAB).perform()
    assert browser.switch_to.active_element.get_attribute("id") == "to"
    # A message sent with the keyboard alone: typed, Tab on, the button pressed by Enter.
    browser.switch_to.active_element.send_keys("0821234567", Keys.TAB)
    browser.switch_to.active_element.send_keys("Sent by keyboard", Keys.TAB)
    select = browser.switch_to.active_element
    assert select.get_attribute("id") == "from"
    select.send_keys(Keys.TAB)
    button = browser.switch_to.active_element
    assert button.text == "Send"
    button.send_keys(Keys.ENTER)
    wait(browser, lambda d: d.find_element(By.TAG_NAME, "h1").text == "Sent")
    assert "accepted" in browser.find_element(By.TAG_NAME, "main").text


def test_the_list_of_messages_follows_their_status_live(admin: HubThread,
                                                         browser: Any) -> None:
    sign_in(browser, admin)  # reports come 3 s after each message
    opened: list[httpx.Client] = []
    try:
        acme = portal_sign_in(admin, opened, "acme", PASSWORD)
        sent = acme.post("/send", data={"csrf": portal_csrf(acme), "text": "listed",
                                        "to": "0821110001, 0821110002"})
        assert sent.status_code == 200
    finally:
        for client in opened:
            client.close()
    browser.find_element(By.LINK_TEXT, "Messages").click()
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#messages .state")) == 2)
    assert "delivered" not in read(browser, lambda d: [s.text for s in d.find_elements(
        By.CSS_SELECTOR, "#messages .state")])
    # No reload: portal.js brings the list up to date.
    wait(browser, lambda d: [s.text for s in d.find_elements(
        By.CSS_SELECTOR, "#messages .state")] == ["delivered", "delivered"])


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


# --- the operators' pages at /admin ------------------------------------------------


@pytest.fixture
def admin(make_hub: MakeHub, browser: Any) -> Iterator[HubThread]:
    """A hub whose reports take 3 s (a batch is seen in progress), with acme and olga."""
    hub = make_hub(simulator={"report_delay": 3.0})
    customer(hub, "acme", PASSWORD)
    operator(hub)
    yield hub
    browser.delete_all_cookies()


def operator_sign_in(browser: Any, hub: HubThread) -> None:
    """Signs in with the keyboard alone: typed into the focused field, Tab, Enter."""
    browser.get(f"{hub.url}/admin/login")
    focused = browser.switch_to.active_element
    assert focused.get_attribute("id") == "operator"  # autofocus
    focused.send_keys("olga", Keys.TAB)
    browser.switch_to.active_element.send_keys(OPERATOR_PASSWORD, Keys.ENTER)
    wait(browser, lambda d: d.find_element(By.TAG_NAME, "h1").text == "Accounts")


def fits_the_phone(browser: Any) -> bool:
    """Nothing wider than the screen: wide tables scroll inside their own box. (Measured
    against the phone's width: in device mode a page too wide widens the viewport.)"""
    return bool(browser.execute_script(
        "return document.documentElement.scrollWidth <= arguments[0]", PHONE["width"]))


def test_an_operator_signs_in_sees_accounts_and_adds_credit(admin: HubThread,
                                                           browser: Any) -> None:
    operator_sign_in(browser, admin)
    assert fits_the_phone(browser)
    row = browser.find_element(By.XPATH, "//main//tr[td/a[text()='acme']]")
    assert "100" in row.text
    row.find_element(By.LINK_TEXT, "acme").click()
    wait(browser, lambda d: d.find_element(By.TAG_NAME, "h1").text == "Account acme")
    browser.find_element(By.ID, "amount").send_keys("250")
    browser.find_element(By.ID, "reason").send_keys("paid invoice 7")
    browser.find_element(By.CSS_SELECTOR, "form.card button[type=submit]").click()
    wait(browser, lambda d: d.find_element(By.ID, "balance").text.startswith("350"))
    ledger = browser.find_element(By.ID, "ledger").text
    assert "+250" in ledger and "paid invoice 7" in ledger and "operator olga" in ledger
    assert admin.spool.get_account("acme").balance == Decimal(350)
    assert fits_the_phone(browser)


def test_an_operator_sees_the_queue_chart_and_a_messages_audit_trail(
        admin: HubThread, browser: Any) -> None:
    key = accounts.create_api_key(admin.spool, accounts.load_secret(admin.config.data_dir),
                                  "acme")
    sent = httpx.post(f"{admin.url}/v1/messages", headers={"Authorization": f"Bearer {key}"},
                      json={"to": "0825550001", "text": "followed by an operator"})
    assert sent.status_code == 202
    message = sent.json()["id"]
    operator_sign_in(browser, admin)
    browser.find_element(By.LINK_TEXT, "Queue").click()
    wait(browser, lambda d: d.find_element(By.TAG_NAME, "h1").text == "Queue, last hour")
    for chart in ("depth-chart", "sent-chart"):
        svg = browser.find_element(By.ID, chart)
        assert svg.size["width"] > 300 and svg.size["height"] > 50, chart
        assert len(svg.find_elements(By.TAG_NAME, "rect")) == 60
    assert fits_the_phone(browser)
    browser.find_element(By.LINK_TEXT, "Find a message").click()
    wait(browser, lambda d: d.find_element(By.TAG_NAME, "h1").text == "Find a message")
    browser.find_element(By.ID, "id").send_keys(message, Keys.ENTER)
    wait(browser, lambda d: message in d.find_element(By.TAG_NAME, "h1").text)
    # Live: the page refreshes itself until the simulator's report settles it.
    wait(browser, lambda d: d.find_element(By.ID, "status").text == "delivered")
    rows = browser.find_elements(By.CSS_SELECTOR, "#events tbody tr")
    statuses = [r.find_elements(By.TAG_NAME, "td")[2].text for r in rows]
    assert statuses == [e.status.value for e in admin.spool.events(message)]
    assert statuses[0] == "accepted" and statuses[-1] == "delivered"


def test_an_operator_watches_a_batch_progress_to_its_end(admin: HubThread,
                                                         browser: Any) -> None:
    operator_sign_in(browser, admin)
    opened: list[httpx.Client] = []
    try:
        acme = portal_sign_in(admin, opened, "acme", PASSWORD)
        upload = acme.post("/send/file", data={"csrf": portal_csrf(acme)}, files={
            "file": ("march.csv", b"to,text\n0821110001,one\n0821110002,two\n", "text/csv")})
        assert upload.status_code == 303
    finally:
        for client in opened:
            client.close()
    browser.find_element(By.LINK_TEXT, "Batches").click()
    wait(browser, lambda d: "march.csv" in d.find_element(By.ID, "batches").text)
    assert read(browser, lambda d: (
        d.find_element(By.CSS_SELECTOR, "#batches progress").get_attribute("max"),
        d.find_element(By.CSS_SELECTOR, "#batches progress").get_attribute("value"),
        d.find_element(By.CLASS_NAME, "batch-state").text)) == ("2", "0", "accepted")
    # portal.js refreshes the list until every batch on it is final.
    wait(browser, lambda d: d.find_element(By.CLASS_NAME, "batch-state").text == "final")
    bar = browser.find_element(By.CSS_SELECTOR, "#batches progress")
    assert bar.get_attribute("value") == "2"
    assert "2 delivered" in browser.find_element(By.ID, "batches").text


def test_an_operator_sees_a_carrier_and_its_binds(
        browser: Any, hubs: list[HubThread], tmp_path: Path) -> None:
    with smsc_in_thread(receipt_mode="after", id_style="padded") as smsc:
        table = CarrierTable("smsc", "smpp", {"host": "127.0.0.1", "port": smsc.port,
                                              "system_id": "hub", "password": "secret",
                                              "window": 10}, "test")
        config = hub_config(tmp_path / "hub", routing={"default_carrier": "smsc"})
        hub = HubThread(replace(config, carriers={"smsc": table})).start()
        hubs.append(hub)
        operator(hub)
        operator_sign_in(browser, hub)
        browser.find_element(By.LINK_TEXT, "Carriers").click()

        # The bind comes up in the background; the page follows it by itself (portal.js).
        wait(browser, lambda d: "1 of 1 bound" in d.find_element(By.ID, "carrier-smsc").text)
        smpp = browser.find_element(By.ID, "carrier-smsc").text
        assert "up" in smpp and "0 in flight of 10" in smpp and "Submitted\n0" in smpp
        assert "simulator" in browser.find_element(By.ID, "carrier-simulator").text
        assert fits_the_phone(browser)
        hub.stop()
    browser.delete_all_cookies()


def test_a_customer_is_refused_operator_pages_and_an_operator_customer_pages_and_signs_out(
        admin: HubThread, browser: Any) -> None:
    sign_in(browser, admin)  # acme, a customer
    for path in ("/admin", "/admin/accounts", "/admin/accounts/acme", "/admin/queue"):
        browser.get(f"{admin.url}{path}")
        assert browser.find_element(By.TAG_NAME, "h1").text == "Operator sign-in", path
    browser.delete_all_cookies()
    operator_sign_in(browser, admin)
    browser.get(f"{admin.url}/messages")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Sign in"
    browser.get(f"{admin.url}/admin/carriers")  # still signed in on the operators' side
    browser.find_element(By.CSS_SELECTOR, "form.logout button").click()
    wait(browser, lambda d: d.find_element(By.TAG_NAME, "h1").text == "Operator sign-in")
    browser.get(f"{admin.url}/admin/accounts")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Operator sign-in"


def test_an_operator_with_a_bad_password_is_refused(admin: HubThread, browser: Any) -> None:
    browser.get(f"{admin.url}/admin/login")
    browser.find_element(By.ID, "operator").send_keys("olga")
    browser.find_element(By.ID, "password").send_keys("not-the-password", Keys.ENTER)
    wait(browser, lambda d: "Wrong operator name or password" in
         d.find_element(By.CSS_SELECTOR, "[role=alert]").text)
    browser.get(f"{admin.url}/admin/accounts")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Operator sign-in"
