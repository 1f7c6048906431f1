"""WinSMS's HTTP API (`/api/auth.asp`, `credits.asp`, `batchmessage.asp`) on a real
server, driven with the query strings of WinSMS's documentation and of its clients'
samples (names in any case, a trailing `;`, local numbers, a POSTed form), answered in
WinSMS's plain-text words."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest

from hub.accounts import hash_password
from tests.factories import sa_minute_ahead
from tests.hubthread import HubThread

MakeHub = Callable[..., HubThread]
ID = r"[0-9A-Z]{26}"


@pytest.fixture
def hub(make_hub: MakeHub) -> HubThread:
    hub = make_hub()
    hub.account("hpotter", credits="10", price="0.25")
    hub.spool.set_password_hash("hpotter", hash_password("w1Zard"))
    return hub


def get(hub: HubThread, page: str, query: str) -> httpx.Response:
    """The query string exactly as written (WinSMS's samples build it by hand)."""
    r = httpx.get(f"{hub.url}/api/{page}?{query}")
    assert r.headers["content-type"].startswith("text/plain"), r.text
    return r


def test_auth_answers_login_ok_or_fail(hub: HubThread) -> None:
    assert get(hub, "auth.asp", "user=hpotter&password=w1Zard").text == "Login=OK"
    assert get(hub, "auth.asp", "user=hpotter&password=nope").text == "Login=FAIL"
    assert get(hub, "auth.asp", "user=nobody&password=w1Zard").text == "Login=FAIL"


def test_auth_of_a_disabled_account_is_accountlocked(hub: HubThread) -> None:
    hub.spool.set_enabled("hpotter", False)
    assert get(hub, "auth.asp", "user=hpotter&password=w1Zard").text == "Login=ACCOUNTLOCKED"


def test_credits_are_the_messages_the_balance_pays_for(hub: HubThread) -> None:
    assert get(hub, "credits.asp", "user=hpotter&password=w1Zard").text == "Credits=40"
    assert get(hub, "credits.asp", "user=hpotter&password=nope").text == "Credits=FAIL"


def test_batchmessage_as_in_winsms_documentation(hub: HubThread) -> None:
    r = get(hub, "batchmessage.asp",
            "user=hpotter&password=w1Zard&message=What%20does%20it%20mean%2C%20they%20await"
            "%20my%20owl%3F&numbers=27825550101;27835550505;27845550909")
    assert r.status_code == 200
    assert re.fullmatch(f"27825550101=({ID});27835550505=({ID});27845550909=({ID});", r.text)
    first = r.text.split(";")[0].split("=")[1]
    stored = hub.spool.get_message(first)
    assert stored is not None and stored.text == "What does it mean, they await my owl?"
    assert hub.spool.get_account("hpotter").balance == Decimal("9.25")


def test_numbers_are_international_without_their_plus_foreign_ones_too(
        hub: HubThread) -> None:
    r = get(hub, "batchmessage.asp",
            "user=hpotter&password=w1Zard&message=Abroad&numbers=447911123456;0825550101")
    found = re.fullmatch(f"447911123456=({ID});0825550101=({ID});", r.text)
    assert found is not None, r.text
    stored = [hub.spool.get_message(found.group(i)) for i in (1, 2)]
    assert [m.recipient for m in stored if m is not None] == ["+447911123456",
                                                               "+27825550101"]


def test_capitalised_names_trailing_semicolon_and_local_numbers(hub: HubThread) -> None:
    # The official samples write User=...&Password=...; VB samples end Numbers with ';'.
    r = get(hub, "batchmessage.asp",
            "User=hpotter&Password=w1Zard&Message=Hi&Numbers=0825550101;&Delivery=No")
    assert re.fullmatch(f"0825550101=({ID});", r.text), r.text
    stored = hub.spool.get_message(r.text[len("0825550101="):-1])
    assert stored is not None and stored.recipient == "+27825550101"


def test_post_form_encoded_to_the_same_page(hub: HubThread) -> None:
    r = httpx.post(f"{hub.url}/api/batchmessage.asp",
                   data={"user": "hpotter", "password": "w1Zard", "message": "Posted",
                         "numbers": "27825550101"})
    assert re.fullmatch(f"27825550101=({ID});", r.text), r.text


def test_scheduled_is_south_african_time(hub: HubThread) -> None:
    at = sa_minute_ahead()
    r = get(hub, "batchmessage.asp",
            f"user=hpotter&password=w1Zard&message=Later&numbers=27825550101"
            f"&scheduled={at:%Y%m%d%H%M}")
    stored = hub.spool.get_message(r.text[len("27825550101="):-1])
    assert stored is not None and stored.send_at == at
    assert stored.status.value == "scheduled"


def test_per_number_error_tokens(hub: HubThread) -> None:
    r = get(hub, "batchmessage.asp",
            "user=hpotter&password=w1Zard&message=Hi&numbers=27825550101;12;")
    assert re.fullmatch(f"27825550101=({ID});12=BADDEST;", r.text), r.text
    bad_time = get(hub, "batchmessage.asp",
                   "user=hpotter&password=w1Zard&message=Hi&numbers=27825550101&scheduled=soon")
    assert bad_time.text == "27825550101=INVALID;"


def test_no_credit_is_nocredits_per_number(make_hub: MakeHub) -> None:
    hub = make_hub()
    hub.account("poor", credits="0.10", price="0.25")
    hub.spool.set_password_hash("poor", hash_password("pw"))
    r = get(hub, "batchmessage.asp", "user=poor&password=pw&message=Hi&numbers=27825550101")
    assert r.text == "27825550101=NOCREDITS;"


def test_batchmessage_whole_request_errors(hub: HubThread) -> None:
    assert get(hub, "batchmessage.asp",
               "user=hpotter&password=nope&message=Hi&numbers=27825550101").text == "FAIL"
    assert get(hub, "batchmessage.asp", "user=hpotter&password=w1Zard&message=Hi").text == (
        "INVALID")
    hub.spool.set_enabled("hpotter", False)
    assert get(hub, "batchmessage.asp", "user=hpotter&password=w1Zard&message=Hi"
               "&numbers=27825550101").text == "27825550101=ACCOUNTLOCKED;"


def test_an_api_key_in_password_or_apikey(make_hub: MakeHub) -> None:
    hub = make_hub()
    key = hub.account("acme")
    assert get(hub, "auth.asp", f"user=acme&password={key}").text == "Login=OK"
    assert get(hub, "credits.asp", f"APIKey={key}").text == "Credits=400"
