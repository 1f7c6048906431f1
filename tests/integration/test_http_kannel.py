"""Kannel's sendsms over HTTP (`GET /cgi-bin/sendsms?...` and the same parameters POSTed
form-encoded) on a real server, driven with the query strings Kannel's documentation and
its clients write, answered in Kannel's words and HTTP statuses; a dlr-url asks for the
same pushes as the XML form's."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select

from hub.accounts import hash_password
from spool import SqlSpool
from spool.tables import messages
from tests.hubthread import HubThread
from tests.polling import eventually
from tests.receiver import Receiver

MakeHub = Callable[..., HubThread]
FAST = {"allow_networks": ["127.0.0.1/32"], "retry_base": 0.1, "retry_cap": 0.3,
        "poll_interval": 0.05, "timeout": 1.0}


@pytest.fixture
def hub(make_hub: MakeHub) -> HubThread:
    hub = make_hub(webhooks=FAST, outbox={"poll_interval": 0.05})
    hub.account("acme", credits="10", price="0.25", sender_ids=("ACME",))
    hub.spool.set_password_hash("acme", hash_password("foo"))
    return hub


def get(hub: HubThread, query: str) -> httpx.Response:
    """The query string exactly as written (as Kannel's clients build it by hand)."""
    return httpx.get(f"{hub.url}/cgi-bin/sendsms?{query}")


def stored(hub: HubThread) -> list[tuple[str, str, str | None]]:
    spool = hub.spool
    assert isinstance(spool, SqlSpool)
    with spool.db.read() as conn:
        rows = conn.execute(select(messages.c.recipient, messages.c.text, messages.c.sender)
                            .order_by(messages.c.id))
        return [(r, t, s) for r, t, s in rows]


def test_get_as_in_kannels_user_guide_is_accepted_for_delivery_with_202(hub: HubThread) -> None:
    r = get(hub, "username=acme&password=foo&to=0821234567&text=Hello+world&from=ACME")
    assert (r.status_code, r.text) == (202, "0: Accepted for delivery")
    assert r.headers["content-type"].startswith("text/html")
    assert stored(hub) == [("+27821234567", "Hello world", "ACME")]
    assert hub.spool.get_account("acme").balance == Decimal("9.75")


def test_user_and_pass_spellings_and_space_separated_receivers(hub: HubThread) -> None:
    # '+' in an unencoded to= is a space, as Kannel reads it: two receivers.
    r = get(hub, "user=acme&pass=foo&to=27821234567+27821234568&text=Hi")
    assert (r.status_code, r.text) == (202, "0: Accepted for delivery")
    assert [row[0] for row in stored(hub)] == ["+27821234567", "+27821234568"]


def test_post_form_encoded_takes_the_same_parameters(hub: HubThread) -> None:
    r = httpx.post(f"{hub.url}/cgi-bin/sendsms",
                   data={"username": "acme", "password": "foo", "to": "0821234567",
                         "text": "Form body", "from": "ACME"})
    assert (r.status_code, r.text) == (202, "0: Accepted for delivery")
    assert stored(hub) == [("+27821234567", "Form body", "ACME")]


def test_xml_post_on_the_same_path_is_still_the_xml_form(hub: HubThread) -> None:
    body = (b'<?xml version="1.0"?><message><submit><da><number>0821234567</number></da>'
            b"<ud>XML</ud><from><user>acme</user><pass>foo</pass></from></submit></message>")
    r = httpx.post(f"{hub.url}/cgi-bin/sendsms", content=body,
                   headers={"Content-Type": "text/xml"})
    assert (r.status_code, r.text) == (202, "0: Accepted for delivery")


def test_charset_and_coding_decode_the_text_as_kannel_does(hub: HubThread) -> None:
    latin = get(hub, "username=acme&password=foo&to=0821234567&text=Gr%FC%DFe&charset=ISO-8859-1")
    ucs2 = get(hub, "username=acme&password=foo&to=0821234568&text=%00H%00i%20%AC&coding=2")
    utf8 = get(hub, "username=acme&password=foo&to=0821234569&text=%E2%82%AC5")
    assert [r.status_code for r in (latin, ucs2, utf8)] == [202, 202, 202]
    assert [row[1] for row in stored(hub)] == ["Grüße", "Hi€", "€5"]


def test_deferred_is_queued_for_later_delivery(hub: HubThread) -> None:
    r = get(hub, "username=acme&password=foo&to=0821234567&text=Later&deferred=60")
    assert (r.status_code, r.text) == (202, "3: Queued for later delivery")


@pytest.mark.parametrize(("query", "status", "text"), [
    ("username=acme&password=bar&to=0821234567&text=x", 403, "Authorization failed for sendsms"),
    ("to=0821234567&text=x", 403, "Authorization failed for sendsms"),
    ("username=acme&password=foo&text=x", 400, "Missing receiver number, rejected"),
    ("username=acme&password=foo&to=&text=x", 400,
     "Empty receiver number not allowed, rejected"),
    ("username=acme&password=foo&to=0821234567&text=x&dlr-mask=64", 400,
     "DLR-Mask field misformed, rejected"),
    ("username=acme&password=foo&to=0821234567&text=x&priority=9", 400,
     "Priority field misformed, rejected"),
    ("username=acme&password=foo&to=0821234567&text=x&coding=7", 400,
     "Coding field misformed, rejected"),
    ("username=acme&password=foo&to=0821234567&text=x&dlr-url=ftp://a&dlr-mask=1", 400,
     "DLR-URL field misformed, rejected"),
    ("username=acme&password=foo&to=0821234567&text=%FF&charset=UTF-8", 400,
     "Charset or body misformed, rejected"),
    ("username=acme&password=foo&to=0821234567&text=x&udh=%06%05%04%0B%84%23%F0", 400,
     "UDH is not supported, rejected"),
    ("username=acme&password=foo&to=12&text=x", 400,
     "Number(s) has/have been denied by white- and/or black-lists."),
    ("username=acme&password=foo&to=0821234567&text=", 400, "The message text is empty, rejected"),
])
def test_refusals_in_kannels_words(hub: HubThread, query: str, status: int, text: str) -> None:
    r = get(hub, query)
    assert (r.status_code, r.text) == (status, text)
    assert stored(hub) == []


def test_denied_receivers_are_listed_when_others_went_out(hub: HubThread) -> None:
    r = get(hub, "username=acme&password=foo&to=0821234567+12&text=Hi")
    assert (r.status_code, r.text) == (202, "0: Accepted for delivery. Denied receivers are: 12")


def test_an_api_key_where_the_password_goes(make_hub: MakeHub) -> None:
    hub = make_hub()
    key = hub.account("acme")
    r = get(hub, f"password={key}&to=0821234567&text=Keyed")
    assert (r.status_code, r.text) == (202, "0: Accepted for delivery")


def test_dlr_url_on_a_get_is_pushed_as_for_the_xml_form(hub: HubThread,
                                                         receiver: Receiver) -> None:
    url = httpx.QueryParams({"dlr-url": receiver.url("/dlr?type=%d&to=%p")})
    r = get(hub, f"username=acme&password=foo&to=0821234567&text=Hi&dlr-mask=9&{url}")
    assert (r.status_code, r.text) == (202, "0: Accepted for delivery")
    eventually(lambda: len(receiver.under("/dlr")) >= 2, 10, 0.05, "the ack and the report")
    assert sorted(h.path for h in receiver.under("/dlr")) == [
        "/dlr?type=1&to=%2B27821234567", "/dlr?type=8&to=%2B27821234567"]


def test_a_dlr_url_into_the_hubs_own_networks_is_refused(make_hub: MakeHub) -> None:
    hub = make_hub()
    hub.account("acme")
    hub.spool.set_password_hash("acme", hash_password("foo"))
    r = get(hub, "username=acme&password=foo&to=0821234567&text=x&dlr-mask=1"
                 "&dlr-url=http%3A%2F%2F127.0.0.1%3A9%2Fdlr")
    assert r.status_code == 400 and r.text.startswith("DLR-URL field misformed (")
    assert stored(hub) == []
