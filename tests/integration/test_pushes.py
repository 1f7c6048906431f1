"""Delivery-report pushes in the dialects' shapes on a real hub, to a real receiver on
127.0.0.1: a Kannel dlr-url called with its escapes filled as Kannel fills them, for the
types its dlr-mask asks; the XML deliveryReport POSTed and valid against smshub-1.xsd;
Clickatell's callback parameters for the statuses its callback value asks; a 500 tried
again; a URL of the hub's own networks refused when the request gives it (in Kannel's
words) and, given up without a connection, when a delivery finds it; and Clickatell's
key:value `callback:` by mail, read by the same parser as its XML."""

from __future__ import annotations

import re
import smtplib
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape

import httpx
import pytest
from lxml import etree
from sqlalchemy import select

from adapters.vendors.kannel import encode
from hub.accounts import hash_password
from hub.clock import utcnow
from hub.mail import MailSettings
from hub.model import CallbackKind
from spool import SqlSpool
from spool.tables import messages, outbox
from tests.hubthread import HubThread
from tests.polling import eventually
from tests.receiver import Hit, Receiver, Script

MakeHub = Callable[..., HubThread]
SCHEMA = etree.XMLSchema(etree.parse(str(Path(__file__).resolve().parents[2] / "schemas"
                                         / "smshub-1.xsd")))
FAST = {"allow_networks": ["127.0.0.1/32"], "retry_base": 0.1, "retry_cap": 0.3,
        "poll_interval": 0.05, "timeout": 1.0}
XML = {"Content-Type": "text/xml"}


@pytest.fixture
def hub(make_hub: MakeHub) -> HubThread:
    hub = make_hub(webhooks=FAST, outbox={"poll_interval": 0.05},
                   simulator={"report_delay": 0.05, "undelivered_suffixes": ["13"],
                              "rejected_suffixes": ["66"]})
    hub.account("acme", credits="10", price="0.25", sender_ids=("ACME",))
    hub.spool.set_password_hash("acme", hash_password("foo"))
    return hub


def hits(receiver: Receiver, path: str, count: int, what: str) -> list[Hit]:
    found = eventually(lambda: len(receiver.under(path)) >= count and receiver.under(path),
                       10, 0.05, what)
    assert isinstance(found, list)
    return found


def spool_of(hub: HubThread) -> SqlSpool:
    spool = hub.spool
    assert isinstance(spool, SqlSpool)
    return spool


def carrier_refs(hub: HubThread) -> dict[str, str]:
    """Recipient -> the simulator's message id (Kannel answers no ids of its own)."""
    with spool_of(hub).db.read() as conn:
        rows = conn.execute(select(messages.c.recipient, messages.c.carrier_message_id))
        return {to: ref for to, ref in rows if ref}


# --- Kannel dlr-url ------------------------------------------------------------------


def kannel(number: str, dlr_url: str | None, mask: str = "31") -> bytes:
    status = ("" if dlr_url is None else
              f"<statusrequest><dlr-mask>{mask}</dlr-mask>"
              f"<dlr-url>{escape(dlr_url)}</dlr-url></statusrequest>")
    return (f'<?xml version="1.0"?><message><submit><da><number>{number}</number></da>'
            f"<oa><number>ACME</number></oa><ud>Hello</ud>{status}"
            "<from><user>acme</user><pass>foo</pass></from></submit></message>").encode()


def post_kannel(hub: HubThread, body: bytes) -> httpx.Response:
    return httpx.post(f"{hub.url}/cgi-bin/sendsms", content=body, headers=XML)


ESCAPES = ("/dlr?type=%d&to=%p&from=%P&q=%q&at=%t&unix=%T&smsc=%i&fid=%F&answer=%A"
           "&first=%k&user=%n&pct=%%&odd=%x&coding=%c")


def test_kannel_dlr_url_is_called_with_its_escapes_filled_as_kannel_fills_them(
        hub: HubThread, receiver: Receiver) -> None:
    r = post_kannel(hub, kannel("27821234567", receiver.url(ESCAPES), mask="9"))
    assert (r.status_code, r.text) == (202, "0: Accepted for delivery")
    ack, delivered = hits(receiver, "/dlr", 2, "the ack and the delivery report")
    ref = carrier_refs(hub)["+27821234567"]
    for hit, dlr_type, template in [
            (ack, 8, "ACK/"),
            (delivered, 1, f"id:{ref} sub:001 dlvrd:001 done date:DATE stat:DELIVRD err:000")]:
        at = re.search(r"&at=(\d{4}-\d\d-\d\d\+\d\d:\d\d:\d\d)&unix=(\d+)&", hit.path)
        assert at is not None, hit.path
        when = datetime.strptime(at.group(1), "%Y-%m-%d+%H:%M:%S").replace(tzinfo=UTC)
        assert int(when.timestamp()) == int(at.group(2))
        assert abs((utcnow() - when).total_seconds()) < 60
        answer = template.replace("DATE", when.strftime("%y%m%d%H%M"))
        assert hit.path == (
            f"/dlr?type={dlr_type}&to=%2B27821234567&from=ACME&q=%2B27821234567"
            f"&at={at.group(1)}&unix={at.group(2)}&smsc=simulator&fid={encode(ref)}"
            f"&answer={encode(answer)}&first={encode(answer.split()[0])}&user=acme"
            "&pct=%&odd=%x&coding=-1")
    assert encode("ACK/ a*b") == "ACK%2F+a*b"  # Kannel's own encoding: '/' escaped, ' ' '+'


def test_kannel_dlr_mask_picks_the_reports_and_a_500_is_tried_again(
        hub: HubThread, receiver: Receiver) -> None:
    receiver.scripts["/flaky"] = Script(statuses=[500, 500, 200])
    r = post_kannel(hub, kannel("27821234513", receiver.url("/flaky?type=%d"), mask="2"))
    assert r.status_code == 202
    tried = hits(receiver, "/flaky", 3, "the undelivered report, tried three times")
    assert [h.path for h in tried] == ["/flaky?type=2"] * 3
    post_kannel(hub, kannel("27821234567", receiver.url("/quiet?type=%d"), mask="16"))
    hits(receiver, "/flaky", 3, "nothing more")
    eventually(lambda: "+27821234567" in carrier_refs(hub), 10, 0.05, "the second sent")
    assert receiver.under("/quiet") == []  # mask 16: it was not refused, so no report


def test_a_message_the_carrier_refuses_gets_kannels_nack(
        hub: HubThread, receiver: Receiver) -> None:
    r = post_kannel(hub, kannel("27821234566", receiver.url("/nack?t=%d&a=%A"), mask="24"))
    assert r.status_code == 202
    [nack] = hits(receiver, "/nack", 1, "the SMSC's refusal")
    assert nack.path == ("/nack?t=16&a=NACK%2Finvalid_destination%2Fdestination+address"
                         "+rejected")


def test_a_kannel_dlr_url_of_the_hubs_own_networks_is_refused_in_kannels_words(
        hub: HubThread) -> None:
    r = post_kannel(hub, kannel("27821234567", "http://169.254.169.254/latest?t=%d"))
    assert (r.status_code, r.text) == (
        400, "DLR-URL field misformed (the URL's host is a link-local address (cloud "
             "metadata lives there)), rejected")
    r = post_kannel(hub, kannel("27821234567", "http://10.0.0.1/dlr", mask="64"))
    assert (r.status_code, r.text) == (400, "DLR-Mask field misformed, rejected")
    assert carrier_refs(hub) == {}
    with spool_of(hub).db.read() as conn:
        assert conn.execute(select(messages.c.id)).first() is None


# --- the XML deliveryReport ----------------------------------------------------------


def test_the_xml_delivery_report_is_posted_valid_against_the_schema(
        hub: HubThread, receiver: Receiver) -> None:
    acme = hub.spool.get_account("acme")
    hub.spool.set_account_push_url(acme.id, CallbackKind.XML, receiver.url("/reports"),
                                   utcnow())
    receiver.scripts["/reports"] = Script(statuses=[500, 204])  # the first is tried again
    key = hub.account("xmlco", credits="10", price="0.25")
    document = ('<submitRequest xmlns="urn:smshub:xml:1"><message><to>+27821234513</to>'
                "<text>Hi</text><clientRef>inv-7</clientRef></message></submitRequest>")
    r = httpx.post(f"{hub.url}/xml", content=document,
                   headers={"Authorization": f"Bearer {key}",
                            "Content-Type": "application/xml"})
    assert r.status_code == 200  # another account's message: no report to acme's URL
    r = httpx.post(f"{hub.url}/xml", content=document.replace("inv-7", "inv-8"),
                   auth=("acme", "foo"), headers={"Content-Type": "application/xml"})
    assert r.status_code == 200, r.text
    failed_once, submitted, final = hits(receiver, "/reports", 3, "three documents")
    assert failed_once.body == submitted.body  # the same report, and only then the next
    reports: list[dict[str, str]] = []
    for hit in (submitted, final):
        assert hit.headers["content-type"] == "application/xml"
        doc = etree.fromstring(hit.body)
        SCHEMA.assertValid(doc)
        [report] = doc
        reports.append({str(k): str(v) for k, v in report.attrib.items()})
    assert [(x["clientRef"], x["to"], x["status"], x["state"]) for x in reports] == [
        ("inv-8", "+27821234513", "submitted", "pending"),
        ("inv-8", "+27821234513", "undelivered", "failed")]
    assert etree.fromstring(final.body)[0][0].get("code")  # why it failed
    assert len(receiver.under("/reports")) == 3


def test_a_push_url_that_a_delivery_finds_forbidden_is_given_up_without_a_connection(
        hub: HubThread) -> None:
    # Stored when the operator still allowed that network, say: each delivery checks again.
    acme = hub.spool.get_account("acme")
    hub.spool.set_account_push_url(acme.id, CallbackKind.XML, "http://10.20.30.40/r",
                                   utcnow())
    post_kannel(hub, kannel("27821234567", None))

    def given_up() -> list[tuple[str, str | None]]:
        with spool_of(hub).db.read() as conn:
            rows = conn.execute(select(outbox.c.status, outbox.c.error_code)
                                .where(outbox.c.channel == "push")).all()
        return [(s, e) for s, e in rows if s == "failed"]

    found = eventually(given_up, 10, 0.05, "the push given up")
    assert found[0] == ("failed", "forbidden_url")


# --- Clickatell callbacks ------------------------------------------------------------


def click(*commands: str) -> dict[str, str]:
    return {"data": "<clickAPI>" + "".join(commands) + "</clickAPI>"}


def send_msg(to: str, callback: str, ref: str) -> str:
    return (f"<sendMsg><api_id>3388480</api_id><user>acme</user><password>foo</password>"
            f"<to>{to}</to><from>ACME</from><text>Hi</text><climsgid>{ref}</climsgid>"
            f"<callback>{callback}</callback></sendMsg>")


def test_clickatell_callbacks_carry_its_parameters_for_the_statuses_asked(
        hub: HubThread, receiver: Receiver) -> None:
    acme = hub.spool.get_account("acme")
    hub.spool.set_account_push_url(acme.id, CallbackKind.CLICKATELL, receiver.url("/cb"),
                                   utcnow())
    r = httpx.post(f"{hub.url}/xml/xml", data=click(
        send_msg("27821234567", "3", "inv-1"),  # intermediate and final
        send_msg("27821234513", "4", "inv-2")))  # errors only
    ids = re.findall(r"<apiMsgId>([^<]+)</apiMsgId>", r.text)
    assert len(ids) == 2, r.text
    found = hits(receiver, "/cb", 3, "three callbacks")
    params: list[dict[str, str]] = [
        dict(parse_qsl(urlsplit(h.path).query, keep_blank_values=True)) for h in found]
    assert [list(p) for p in params] == [["api_id", "apiMsgId", "cliMsgId", "timestamp",
                                          "to", "from", "status", "charge"]] * 3
    mine = sorted((p["apiMsgId"], p["cliMsgId"], p["to"], p["status"]) for p in params)
    assert mine == sorted([(ids[0], "inv-1", "27821234567", "003"),
                           (ids[0], "inv-1", "27821234567", "004"),
                           (ids[1], "inv-2", "27821234513", "007")])
    for p in params:
        assert (p["api_id"], p["from"], p["charge"]) == ("3388480", "ACME", "0.25")
        assert abs(int(p["timestamp"]) - utcnow().timestamp()) < 60


def test_a_clickatell_callback_value_out_of_range_is_fault_101(hub: HubThread) -> None:
    r = httpx.post(f"{hub.url}/xml/xml", data=click(send_msg("27821234567", "8", "x")))
    assert "<fault>101, Invalid or missing parameters</fault>" in r.text


def test_a_clickatell_mail_asks_for_callbacks_as_its_xml_does(
        make_hub: MakeHub, tls_files: dict[str, str], receiver: Receiver) -> None:
    # One parser for Clickatell's key:value documents: by mail (and FTP) too.
    domain, sender = "sms.example.co.za", "ops@acme.co.za"
    hub = make_hub(webhooks=FAST, outbox={"poll_interval": 0.05},
                   simulator={"report_delay": 0.05},
                   smtp={"enabled": True, "port": 0, "domains": [domain],
                         "clickatell_addresses": [f"sms@{domain}"], **tls_files})
    hub.account("acme")
    acme = hub.spool.get_account("acme")
    hub.spool.save_mail_settings(MailSettings(acme.id, (sender,)))
    hub.spool.set_account_push_url(acme.id, CallbackKind.CLICKATELL, receiver.url("/mailcb"),
                                   utcnow())
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, f"sms@{domain}", "x"
    message.set_content("api_id:77\ncallback:2\ntext:Server down\nto:27821234567\n")
    assert hub.hub.smtp_port is not None
    with smtplib.SMTP("127.0.0.1", hub.hub.smtp_port, timeout=10) as client:
        client.send_message(message)
    [hit] = hits(receiver, "/mailcb", 1, "the final status")
    params = dict(parse_qsl(urlsplit(hit.path).query, keep_blank_values=True))
    assert (params["api_id"], params["to"], params["status"]) == ("77", "27821234567", "004")
