"""Input at fault gets the protocol's own clear error, never a 500 or a traceback's words:
times out of range, values that overflow, JSON and MIME nested too deep, and documents in
the wrong shape, each driven through the real server with a real client (issue #17)."""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Iterator
from datetime import timedelta

import httpx
import pytest
from lxml import etree

from adapters.smtp import text as mail_text
from hub.accounts import hash_password
from hub.clock import utcnow
from hub.mail import MailSettings
from tests.hubthread import HubThread
from tests.integration.test_smtp_mail import DOMAIN, SENDER, send, smtp_section

MakeHub = Callable[..., HubThread]
NS = "urn:smshub:xml:1"


@pytest.fixture
def hub(make_hub: MakeHub, tls_files: dict[str, str]) -> HubThread:
    hub = make_hub(smtp=smtp_section(**tls_files, max_message_bytes=2_000_000))
    hub.account("acme", credits="10")
    account = hub.spool.get_account("acme")
    hub.spool.set_password_hash("acme", hash_password("w1Zard-pass"))
    hub.spool.save_mail_settings(MailSettings(account.id, (SENDER,)))
    return hub


@pytest.fixture
def client(hub: HubThread) -> Iterator[httpx.Client]:
    key = hub.account("rest")
    with httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {key}"},
                      timeout=30) as c:
        yield c


def _iso(delta: timedelta) -> str:
    return (utcnow() + delta).isoformat()


OUT_OF_RANGE = ["9999-12-31", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00",
                "0001-01-01", "1970-01-01T00:00:00Z"]


@pytest.mark.parametrize("send_at", [*OUT_OF_RANGE, "+2y", "-2d"])
def test_rest_send_at_out_of_range_is_refused_422_invalid_time(
    client: httpx.Client, send_at: str
) -> None:
    value = {"+2y": _iso(timedelta(days=800)), "-2d": _iso(-timedelta(days=2))}.get(
        send_at, send_at)
    r = client.post("/v1/messages", json={"to": "0821234567", "text": "x", "send_at": value})
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_time"


@pytest.mark.parametrize("field", [{"expires_at": "9999-12-31T00:00:00Z"},
                                   {"expires_at": "0001-01-01T00:00:00+14:00"},
                                   {"validity": 10**22},
                                   {"validity": 10**9, "send_at": "9999-12-31"}])
def test_rest_expiry_out_of_range_or_overflowing_is_refused_422(
    client: httpx.Client, field: dict[str, object]
) -> None:
    r = client.post("/v1/messages", json={"to": "0821234567", "text": "x", **field})
    assert r.status_code == 422, r.text
    assert r.json()["code"] in ("invalid_time", "invalid_validity")


def test_rest_send_at_within_the_allowed_range_is_scheduled(client: httpx.Client) -> None:
    for delta in (timedelta(days=365), -timedelta(hours=23)):
        r = client.post("/v1/messages", json={"to": "0821234567", "text": "x",
                                              "send_at": _iso(delta)})
        assert r.status_code == 202, r.text


def _native(extra: str) -> bytes:
    return (f'<submitRequest xmlns="{NS}"><message><to>0821234567</to><text>x</text>'
            f"{extra}</message></submitRequest>").encode()


@pytest.mark.parametrize("extra", [
    "<validity>12345678901234567890123</validity>",
    "<sendAt>9999-12-31T23:59:59</sendAt>",
    "<sendAt>9999-12-31T23:59:59</sendAt><validity>86400</validity>",
    "<sendAt>0001-01-01T00:00:00+14:00</sendAt>",
    "<expiresAt>9999-12-31T23:59:59-14:00</expiresAt>",
])
def test_native_xml_values_that_pass_the_xsd_but_overflow_are_refused_in_xml(
    client: httpx.Client, extra: str
) -> None:
    r = client.post("/xml", content=_native(extra))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/xml")
    [rejected] = etree.fromstring(r.content)
    assert etree.QName(rejected).localname == "rejected"
    assert rejected.get("code") in ("invalid_time", "invalid_validity")


def test_native_xml_replies_since_that_overflows_is_an_xml_error(client: httpx.Client) -> None:
    body = (f'<repliesRequest xmlns="{NS}"><since>0001-01-01T00:00:00+14:00</since>'
            "</repliesRequest>").encode()
    r = client.post("/xml", content=body)
    assert r.status_code == 400, r.text
    root = etree.fromstring(r.content)
    assert root.tag == f"{{{NS}}}error" and root.get("code") == "invalid_time"


def _winsms(inner: str) -> bytes:
    return (f"<WinSMS_Multi_Message><User>acme</User><Password>w1Zard-pass</Password>{inner}"
            "</WinSMS_Multi_Message>").encode()


@pytest.mark.parametrize("inner", [
    "",
    "<Message><MessageText>Hi</MessageText><Numbers><Number>0821234567</Number></Numbers>"
    "</Message>",
    "<Messages></Messages>",
    "<Messages><Message><MessageText>Hi</MessageText></Message></Messages>",
])
def test_winsms_document_without_messages_and_numbers_is_the_dialects_error(
    hub: HubThread, inner: str
) -> None:
    r = httpx.post(f"{hub.url}/api/xmlsendsmsmulti.asp", content=_winsms(inner))
    assert r.status_code == 400, r.text
    root = etree.fromstring(r.content)
    assert root.tag == "WinSMS_Response" and root.findtext("Error") == "INVALID"
    assert "Messages" in (root.findtext("Description") or "")


def test_winsms_schedule_in_year_9999_is_refused_per_number(hub: HubThread) -> None:
    body = _winsms("<Scheduled>999912312359</Scheduled><Messages><Message><MessageText>Hi"
                   "</MessageText><Numbers><Number>0821234567</Number></Numbers></Message>"
                   "</Messages>")
    r = httpx.post(f"{hub.url}/api/xmlsendsmsmulti.asp", content=body)
    root = etree.fromstring(r.content)
    assert root.findtext("Message/Error") == "INVALID", r.text
    assert "between" in (root.findtext("Message/Description") or "")


def _nested_mime(depth: int) -> bytes:
    head = (f"From: {SENDER}\r\nTo: 27821234567@{DOMAIN}\r\nSubject: deep\r\n"
            "MIME-Version: 1.0\r\n")
    parts = [head]
    for level in range(depth):
        parts.append(f'Content-Type: multipart/mixed; boundary="b{level}"\r\n\r\n--b{level}\r\n')
    parts.append("Content-Type: text/plain\r\n\r\nhello\r\n")
    for level in reversed(range(depth)):
        parts.append(f"--b{level}--\r\n")
    return "".join(parts).encode()


def test_smtp_error_the_hub_did_not_expect_is_451_without_its_words(
    hub: HubThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> object:
        raise ValueError("internal detail /srv/smshub/secret")

    monkeypatch.setattr(mail_text, "sms_text_for", broken)  # a bug of ours, injected
    assert hub.hub.smtp_port is not None
    with smtplib.SMTP("127.0.0.1", hub.hub.smtp_port, timeout=30) as smtp:
        smtp.ehlo("client.example")
        code, reply = send(smtp, _nested_mime(1), [f"27821234567@{DOMAIN}"])
    assert (code, reply) == (451, "4.3.0 Temporary failure, try again later")
