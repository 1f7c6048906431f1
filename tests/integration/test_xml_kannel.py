"""Kannel's sendsms XML POST (`/cgi-bin/sendsms`, text/xml) on a real server, answered
in Kannel's words and HTTP statuses."""

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

MakeHub = Callable[..., HubThread]
XML = {"Content-Type": "text/xml"}


@pytest.fixture
def hub(make_hub: MakeHub) -> HubThread:
    hub = make_hub()
    hub.account("acme", credits="10", price="0.25", sender_ids=("ACME",))
    hub.spool.set_password_hash("acme", hash_password("foo"))
    return hub


def submit(*numbers: str, ud: str = "Hello%20world", extra: str = "", password: str = "foo",
           declaration: str = '<?xml version="1.0"?>') -> bytes:
    da = "".join(f"<da><number>{n}</number></da>" for n in numbers)
    return (f"{declaration}<message><submit>{da}<oa><number>ACME</number></oa>"
            f"<ud>{ud}</ud>{extra}<from><user>acme</user><pass>{password}</pass></from>"
            "</submit></message>").encode("latin-1")


def post(hub: HubThread, body: bytes, headers: dict[str, str] = XML) -> httpx.Response:
    return httpx.post(f"{hub.url}/cgi-bin/sendsms", content=body, headers=headers)


def stored_texts(hub: HubThread) -> list[str]:
    """Kannel answers no ids, so the test reads what the spool holds."""
    spool = hub.spool
    assert isinstance(spool, SqlSpool)
    with spool.db.read() as conn:
        return list(conn.execute(select(messages.c.text).order_by(messages.c.id)).scalars())


def test_submit_is_accepted_for_delivery_with_202(hub: HubThread) -> None:
    r = post(hub, submit("27821234567", "0821234568"))
    assert (r.status_code, r.text) == (202, "0: Accepted for delivery")
    assert r.headers["content-type"].startswith("text/html")
    assert hub.spool.get_account("acme").balance == Decimal("9.50")


def test_ud_is_url_decoded_or_hex_decoded_in_the_documents_encoding(hub: HubThread) -> None:
    latin = post(hub, submit("27821234567", ud="Gr%FC%DFe+aus+Kapstadt",
                             declaration='<?xml version="1.0" encoding="ISO-8859-1"?>'))
    hexed = post(hub, submit("27821234567", ud="48656c6c6f"))
    assert (latin.status_code, hexed.status_code) == (202, 202)
    assert sorted(stored_texts(hub)) == ["Grüße aus Kapstadt", "Hello"]


def test_deferred_delivery_is_queued_for_later(hub: HubThread) -> None:
    r = post(hub, submit("27821234567", extra="<timing><delay>60</delay></timing>"))
    assert (r.status_code, r.text) == (202, "3: Queued for later delivery")


def test_wrong_password_is_authorization_failed_403(hub: HubThread) -> None:
    r = post(hub, submit("27821234567", password="bar", extra="<udh>0605040B8423F0</udh>"))
    assert (r.status_code, r.text) == (403, "Authorization failed for sendsms")


def test_no_receiver_is_missing_receiver_400(hub: HubThread) -> None:
    r = post(hub, submit())
    assert (r.status_code, r.text) == (400, "Missing receiver(s) number(s), rejected")


def test_invalid_numbers_are_denied_and_listed_when_others_went_out(hub: HubThread) -> None:
    r = post(hub, submit("12"))
    assert r.status_code == 400 and "denied" in r.text
    r = post(hub, submit("27821234567", "12", "34"))
    assert (r.status_code, r.text) == (
        202, "0: Accepted for delivery. Denied receivers are: 12 34")


def test_no_credit_is_not_routable_403(hub: HubThread) -> None:
    r = post(hub, submit(*["27821234567"] * 41))
    assert r.status_code == 202  # 40 fit the balance
    r = post(hub, submit("27821234567"))
    assert (r.status_code, r.text) == (403, "Not routable. Do not try again.")


@pytest.mark.parametrize(("extra", "answer"), [
    ("<priority>7</priority>", "Priority field misformed, rejected"),
    ("<dcs><coding>1</coding></dcs>", "8-bit (binary) coding is not supported, rejected"),
    ("<udh>0605040B8423F0</udh>", "UDH is not supported, rejected"),
])
def test_field_errors_are_400_in_kannels_phrasing(hub: HubThread, extra: str,
                                                  answer: str) -> None:
    r = post(hub, submit("27821234567", extra=extra))
    assert (r.status_code, r.text) == (400, answer)


def test_other_content_types_are_refused(hub: HubThread) -> None:
    plain = post(hub, b"Hello", {"Content-Type": "text/plain", "X-Kannel-To": "27821234567"})
    assert (plain.status_code, plain.text) == (415, "Unsupported content-type, rejected")
    assert post(hub, submit("27821234567"), {"Content-Type": "image/png"}).status_code == 400


def test_doctype_and_malformed_xml_are_refused_before_anything_is_read(hub: HubThread) -> None:
    evil = (b'<!DOCTYPE m [<!ENTITY p SYSTEM "file:///etc/passwd">]>'
            + submit("27821234567", ud="&p;").split(b"?>", 1)[1])
    for body in (evil, b"<message><submit>"):
        r = post(hub, body)
        assert r.status_code == 400 and "root:" not in r.text
        assert r.text.startswith("Invalid XML document")


def test_a_body_over_the_xml_limit_is_refused_in_kannels_words(make_hub: MakeHub) -> None:
    hub = make_hub(xml={"max_body_bytes": 2000})
    r = post(hub, submit(*["27821234567"] * 100))
    assert r.status_code == 413 and r.text.startswith("Request body over 2000 bytes")
