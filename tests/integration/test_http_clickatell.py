"""Clickatell's HTTP API (`/http/...`) on a real server: driven by the PyPI client
`clickatell` (its Http transport) pointed at the hub, and by hand with the query strings
of Clickatell's documentation; answers are its `ID:`/`ERR:` lines and status codes, and
sessions are shared with the XML API."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from urllib.parse import quote

import httpx
import pytest
from clickatell.http import Http

from hub.accounts import hash_password
from tests.hubthread import HubThread

MakeHub = Callable[..., HubThread]
ID = r"[0-9A-Z]{26}"
AUTH = "user=acme&password=foo&api_id=3388480"


@pytest.fixture
def hub(make_hub: MakeHub) -> HubThread:
    hub = make_hub()
    hub.account("acme", credits="10", price="0.25", sender_ids=("ACME",))
    hub.spool.set_password_hash("acme", hash_password("foo"))
    return hub


def client(hub: HubThread, password: str = "foo") -> Http:
    api = Http("acme", password, 3388480)
    api.endpoint = hub.url.removeprefix("http://")  # the only change a client makes
    return api


def get(hub: HubThread, command: str, query: str) -> str:
    r = httpx.get(f"{hub.url}/http/{command}?{query}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return r.text


# --- the PyPI client -----------------------------------------------------------------


def test_pypi_client_sends_to_one_and_to_several(hub: HubThread) -> None:
    api = client(hub)
    [one] = api.sendMessage("27821234567", "Hello from the client")
    assert re.fullmatch(ID, one["id"]) and one["error"] is False
    several = api.sendMessage(["27821234568", "27821234569"], "To both")
    assert [s["destination"] for s in several] == ["27821234568", "27821234569"]
    assert all(re.fullmatch(ID, s["id"]) for s in several)
    stored = hub.spool.get_message(one["id"])
    assert stored is not None and stored.text == "Hello from the client"


def test_to_is_international_without_its_plus_foreign_numbers_too(hub: HubThread) -> None:
    # Clickatell's `to` is "international, no +": a UK number is not a ZA national one.
    answer = get(hub, "sendmsg", f"{AUTH}&to=447911123456,27821234567&text=Abroad")
    found = re.fullmatch(f"ID: ({ID}) To: 447911123456\nID: ({ID}) To: 27821234567", answer)
    assert found is not None, answer
    stored = [hub.spool.get_message(found.group(i)) for i in (1, 2)]
    assert [m.recipient for m in stored if m is not None] == ["+447911123456",
                                                               "+27821234567"]


def test_pypi_client_reads_balance_status_and_charge(hub: HubThread) -> None:
    api = client(hub)
    [sent] = api.sendMessage("27821234567", "Charged")
    assert api.getBalance() == {"balance": 9.75}
    status = api.queryMessage(sent["id"])
    assert status["id"] == sent["id"] and status["charge"] == 0.25
    assert status["status"] in {"002", "003", "004"}
    assert status["description"] is not False  # a code the client knows


def test_pypi_client_stops_a_message_not_yet_sent(hub: HubThread) -> None:
    api = client(hub)
    [later] = api.sendMessage("27821234567", "Tomorrow", {"deliv_time": 600})
    assert api.stopMessage(later["id"]) == {
        "id": later["id"], "status": "006",
        "description": "The message was terminated by a user (stop message command) or by "
                       "our staff."}
    assert hub.spool.get_account("acme").balance == Decimal("10.00")  # refunded


def test_pypi_client_sees_errors_by_code(hub: HubThread) -> None:
    [refused] = client(hub, password="wrong").sendMessage("27821234567", "x")
    assert (refused["errorCode"], refused["error"]) == ("001", "Authentication failed")
    bad, good = client(hub).sendMessage(["12", "27821234567"], "mixed")
    # With several numbers the client keeps each line's text (its code it files apart).
    assert (bad["destination"], bad["error"]) == ("12", "Invalid destination address")
    assert re.fullmatch(ID, good["id"])


# --- by hand, as documented ------------------------------------------------------------


def test_auth_gives_a_session_that_sendmsg_ping_and_the_xml_api_take(hub: HubThread) -> None:
    answer = get(hub, "auth", AUTH)
    assert re.fullmatch(r"OK: [0-9a-f]{32}", answer)
    session = answer.removeprefix("OK: ")
    assert get(hub, "ping", f"session_id={session}") == "OK:"
    assert re.fullmatch(f"ID: {ID}",
                        get(hub, "sendmsg", f"session_id={session}&to=27821234567&text=Hi"))
    doc = f"<clickAPI><getBalance><session_id>{session}</session_id></getBalance></clickAPI>"
    r = httpx.get(f"{hub.url}/xml/xml?data={quote(doc)}")
    assert "<ok>9.75</ok>" in r.text


def test_sendmsg_to_several_answers_a_line_each_with_to(hub: HubThread) -> None:
    answer = get(hub, "sendmsg", f"{AUTH}&to=27821234567,27821234568,12&text=Hello+there"
                                 "&from=ACME")
    lines = answer.split("\n")
    assert re.fullmatch(f"ID: {ID} To: 27821234567", lines[0])
    assert re.fullmatch(f"ID: {ID} To: 27821234568", lines[1])
    assert lines[2] == "ERR: 105, Invalid destination address To: 12"


def test_querymsg_by_apimsgid_or_climsgid(hub: HubThread) -> None:
    sent = get(hub, "sendmsg", f"{AUTH}&to=27821234567&text=Ref&climsgid=inv-1")
    apimsgid = sent.removeprefix("ID: ")
    assert re.fullmatch(f"ID: {apimsgid} Status: 00[234]",
                        get(hub, "querymsg", f"{AUTH}&apimsgid={apimsgid}"))
    assert re.fullmatch(f"ID: {apimsgid} Status: 00[234]",
                        get(hub, "querymsg", f"{AUTH}&climsgid=inv-1"))
    assert get(hub, "querymsg", f"{AUTH}&apimsgid=nope") == "ERR: 103, Unknown API message ID"
    assert get(hub, "querymsg", f"{AUTH}&climsgid=nope") == "ERR: 104, Unknown client message ID"
    assert get(hub, "querymsg", AUTH) == "ERR: 109, Missing message ID"


def test_scheduled_message_is_011_until_deleted_then_006(hub: HubThread) -> None:
    apimsgid = get(hub, "sendmsg", f"{AUTH}&to=27821234567&text=Later&deliv_time=60")[4:]
    assert get(hub, "querymsg", f"{AUTH}&apimsgid={apimsgid}") == f"ID: {apimsgid} Status: 011"
    assert get(hub, "delmsg", f"{AUTH}&apimsgid={apimsgid}") == f"ID: {apimsgid} Status: 006"
    assert get(hub, "querymsg", f"{AUTH}&apimsgid={apimsgid}") == f"ID: {apimsgid} Status: 006"


def test_getbalance_and_getmsgcharge(hub: HubThread) -> None:
    assert get(hub, "getbalance", AUTH) == "Credit: 10"
    apimsgid = get(hub, "sendmsg", f"{AUTH}&to=27821234567&text=Hi")[4:]
    assert re.fullmatch(f"apiMsgId: {apimsgid} charge: 0.25 status: 00[234]",
                        get(hub, "getmsgcharge", f"{AUTH}&apimsgid={apimsgid}"))


@pytest.mark.parametrize(("command", "query", "answer"), [
    ("auth", "user=acme&password=bad&api_id=1", "ERR: 001, Authentication failed"),
    ("sendmsg", "to=27821234567&text=x", "ERR: 001, Authentication failed"),
    ("ping", "session_id=0123456789abcdef0123456789abcdef", "ERR: 003, Session ID expired"),
    ("ping", "", "ERR: 005, Missing session ID"),
    ("sendmsg", f"{AUTH}&text=x", "ERR: 101, Invalid or missing parameters"),
    ("sendmsg", f"{AUTH}&to=27821234567&text=", "ERR: 107, Empty message"),
    ("sendmsg", f"{AUTH}&to=27821234567&text=x&from=OTHER", "ERR: 123, Invalid sender ID"),
    ("sendmsg", f"{AUTH}&to=27821234567&text=x&deliv_time=99999",
     "ERR: 120, Invalid delivery time"),
    ("sendmsg", f"{AUTH}&to=27821234567&text=zz&unicode=1", "ERR: 116, Invalid Unicode data"),
])
def test_errors_in_clickatells_words(hub: HubThread, command: str, query: str,
                                     answer: str) -> None:
    assert get(hub, command, query) == answer


def test_post_form_encoded_and_unicode_hex(hub: HubThread) -> None:
    r = httpx.post(f"{hub.url}/http/sendmsg",
                   data={"user": "acme", "password": "foo", "api_id": "1",
                         "to": "27821234567", "text": "00480069", "unicode": "1"})
    stored = hub.spool.get_message(r.text.removeprefix("ID: "))
    assert stored is not None and stored.text == "Hi"
