"""The dialects' push formats without a server: Kannel's escapes filled exactly as its
smsbox fills them (encoding, words, times, unknown escapes), what %A says for each DLR
type, which statuses each push asks for, the XML report's error code made a schema
token; and the channel refusing a filled URL that leads into the hub's own networks."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from adapters.vendors.clickatell import parse_body
from adapters.vendors.kannel import Dlr, encode, fill, report_text
from adapters.webhooks.pushes import PushChannel, build
from adapters.xml.reports import error_code
from hub.model import Callback, CallbackKind, OutboxItem, OutboxStatus, Status
from hub.pushes import wants
from hub.webhooks import ForbiddenTarget

AT = datetime(2026, 12, 5, 9, 4, 3, tzinfo=UTC)
DLR = Dlr(type=1, text="id:abc sub:001 dlvrd:001 stat:DELIVRD *x", receiver="+27821234567",
          sender="00271234", at=AT, message_id="01JEXAMPLE", foreign_id="a b/c",
          smsc="smsc-1", service="acme")


@pytest.mark.parametrize(("pattern", "filled"), [
    ("t=%d", "t=1"),
    ("to=%p&from=%P", "to=%2B27821234567&from=00271234"),
    ("q=%q&Q=%Q", "q=%2B27821234567&Q=%2B271234"),
    ("at=%t&T=%T", "at=2026-12-05+09:04:03&T=1796461443"),
    ("fid=%F&smsc=%i&id=%I&n=%n", "fid=a+b%2Fc&smsc=smsc-1&id=01JEXAMPLE&n=acme"),
    ("A=%A", "A=id%3Aabc+sub%3A001+dlvrd%3A001+stat%3ADELIVRD+*x"),
    ("k=%k&s=%s&S=%S&r=%r", "k=id%3Aabc&s=sub%3A001&S=dlvrd:001&r=stat%3ADELIVRD+*x"),
    ("c=%c&m=%m&M=%M&C=%C&O=%O", "c=-1&m=-1&M=-1&C=UTF-8&O=00"),
    ("b=%B&D=%D&o=%o&u=%u&f=%f", "b=&D=&o=&u=&f="),
    ("pct=%%&odd=%x&end=%", "pct=%&odd=%x&end=%"),
])
def test_kannel_escapes_are_filled_as_kannel_fills_them(pattern: str, filled: str) -> None:
    assert fill(pattern, DLR) == filled


def test_kannel_url_encoding_keeps_only_rfc_2396_unreserved_characters() -> None:
    assert encode("a b-_.!~*'()/?&=+é") == "a+b-_.!~*'()%2F%3F%26%3D%2B%C3%A9"


def test_percent_a_is_ack_nack_or_a_receipt_text() -> None:
    assert report_text(8, "submitted", AT, "r1", None) == "ACK/"
    assert report_text(16, "rejected", AT, None, ("invalid_destination", "bad number")) == (
        "NACK/invalid_destination/bad number")
    assert report_text(2, "expired", AT, "r1", None) == (
        "id:r1 sub:001 dlvrd:000 done date:2612050904 stat:EXPIRED err:000")


@pytest.mark.parametrize(("kind", "mask", "status", "error", "asked"), [
    (CallbackKind.KANNEL, 1, Status.DELIVERED, None, True),
    (CallbackKind.KANNEL, 2, Status.DELIVERED, None, False),
    (CallbackKind.KANNEL, 2, Status.EXPIRED, None, True),
    (CallbackKind.KANNEL, 8, Status.SUBMITTED, None, True),
    (CallbackKind.KANNEL, 16, Status.REJECTED, None, True),
    (CallbackKind.KANNEL, 16, Status.FAILED, None, True),  # never reached a carrier
    (CallbackKind.KANNEL, 2, Status.FAILED, "no_delivery_report", True),
    (CallbackKind.KANNEL, 4, Status.QUEUED, None, True),
    (CallbackKind.KANNEL, 31, Status.ACCEPTED, None, False),
    (CallbackKind.CLICKATELL, 1, Status.SUBMITTED, None, True),
    (CallbackKind.CLICKATELL, 1, Status.DELIVERED, None, False),
    (CallbackKind.CLICKATELL, 2, Status.UNDELIVERED, None, True),
    (CallbackKind.CLICKATELL, 4, Status.DELIVERED, None, False),
    (CallbackKind.CLICKATELL, 4, Status.CANCELLED, None, True),
    (CallbackKind.XML, 0, Status.SUBMITTED, None, True),
    (CallbackKind.XML, 0, Status.QUEUED, None, False),
])
def test_each_push_reports_the_statuses_it_asks_for(kind: CallbackKind, mask: int,
                                                    status: Status, error: str | None,
                                                    asked: bool) -> None:
    assert wants(kind, mask, status, error) is asked


def test_an_error_code_is_made_a_schema_token() -> None:
    assert [error_code(c) for c in ("absent_subscriber", "SMPP 0x0B", "11")] == [
        "absent_subscriber", "smpp_0x0b", "error_11"]


FACTS: dict[str, object] = {"kind": "kannel", "url": "http://%i/dlr?t=%d", "status": "delivered",
         "state": "delivered", "at": "2026-12-05T09:04:03.000Z", "id": "01JEXAMPLE",
         "account": "acme", "to": "+27821234567", "from": "ACME", "client_ref": None,
         "carrier": "10.1.2.3", "carrier_ref": "r1", "cost": "0.25", "segments": 1,
         "api_id": None, "dlr": 1, "error": None}


async def test_a_filled_url_that_leads_into_the_hubs_networks_is_refused() -> None:
    assert build(FACTS).url == "http://10.1.2.3/dlr?t=1"
    channel = PushChannel([], 1.0, 1)
    item = OutboxItem(id="01JITEM", channel="push", account_id=1, address="http://%i/dlr",
                      status=OutboxStatus.SENDING, attempts=1, created_at=AT, due_at=AT,
                      payload=json.dumps(FACTS))
    with pytest.raises(ForbiddenTarget, match="private address"):
        await channel.deliver(item)
    await channel.close()


def test_a_clickatell_key_value_document_asks_for_callbacks() -> None:
    body = parse_body("api_id:3388480\ncallback:6\ntext:Hi\nto:27821234567\n")
    assert body.callback == Callback(CallbackKind.CLICKATELL, None, 6, "3388480")
    assert parse_body("callback:9\ntext:Hi\nto:27821234567\n").callback is None
    assert parse_body("text:Hi\nto:27821234567\n").callback is None
