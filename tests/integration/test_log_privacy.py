"""What the hub and the libraries log while the real SMTP listener, FTP drop, JSON API, XML
API, Kannel's sendsms, WinSMS's and Clickatell's HTTP and XML APIs and the portal serve
real clients, while the dispatcher sends, an SMSC delivers receipts and replies, and
pushes and signed webhooks go out, at DEBUG: never a full phone number, a message or
reply text, an API key, a webhook secret or a password (hub/logs.py; POPIA, issue #15)."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import ssl
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlencode
from xml.sax.saxutils import escape

import httpx
import pytest

from hub.accounts import hash_password
from hub.cli import _logging
from hub.clock import utcnow
from hub.config import CarrierTable, with_overrides
from hub.logs import CHATTY
from hub.model import InboundMessage
from tests.ftpdrop import PASSWORD, make_drop, no_leaked_threads
from tests.hubthread import HubThread
from tests.integration.conftest import test_config as hub_config
from tests.integration.test_smtp_mail import DOMAIN, connect, mail, queued, send, smtp_section
from tests.integration.test_smtp_security import _prepared
from tests.polling import eventually
from tests.portal import csrf, sign_in
from tests.receiver import Receiver, Script, verified
from tests.smsc.scripted import ScriptedSmsc
from tests.smsc.thread import smsc_in_thread

pytestmark = pytest.mark.usefixtures("no_leaked_threads")
_ = no_leaked_threads  # a fixture used through pytestmark

NUMBER = "27821234590"
TEXT = "Canary text Zebra-Quokka"
REPLY = "Canary reply Okapi-Narwhal"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Everything any logger writes, formatted, with the CLI's logging set up at debug."""
    root = logging.getLogger()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(name)s %(funcName)s: %(message)s"))
    quietened = (*CHATTY, "httpx", "alembic")  # by the CLI below debug
    levels = {name: logging.getLogger(name).level for name in ("", *quietened)}
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in quietened:  # an earlier test's CLI run may have quietened them
        logging.getLogger(name).setLevel(logging.NOTSET)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _debug(hub: HubThread) -> None:
    _logging(with_overrides(hub.config, hub={"log_level": "debug"}))


def test_smtp_session_at_debug_logs_no_number_text_or_password(
        captured: io.StringIO, make_hub: Callable[..., HubThread],
        tls_files: dict[str, str], client_tls: ssl.SSLContext) -> None:
    hub = _prepared(make_hub(smtp=smtp_section(**tls_files)))
    _debug(hub)
    with connect(hub) as client:
        client.starttls(context=client_tls)
        client.ehlo("client.example")
        client.login("acme", PASSWORD)
        code, reply = send(client, mail(TEXT, to=f"{NUMBER}@{DOMAIN}"),
                           [f"{NUMBER}@{DOMAIN}"], sender="ops@acme.co.za")
    assert code == 250 and [m.text for m in queued(hub, reply)] == [TEXT]
    logged = captured.getvalue()
    assert "mail.log" in logged  # aiosmtpd did speak at debug
    plain = base64.b64encode(f"\0acme\0{PASSWORD}".encode()).decode()
    for secret in (NUMBER, TEXT, PASSWORD, plain):
        assert secret not in logged


def test_ftp_session_at_debug_logs_no_number_text_or_password(
        captured: io.StringIO, make_hub: Callable[..., HubThread]) -> None:
    drop = make_drop(make_hub)
    _debug(drop.hub)
    drop.upload(f"to-{NUMBER}.csv", f"to,text\n{NUMBER},{TEXT}\n")
    rows = drop.result(f"to-{NUMBER}.csv")
    assert rows[1][3] == "accepted"
    logged = captured.getvalue()
    assert "pyftpdlib" in logged  # pyftpdlib did speak at debug
    for secret in (NUMBER, TEXT, PASSWORD):
        assert secret not in logged


KEY_PASSWORD = "Pw-Canary-4711"


def test_rest_xml_and_kannel_at_debug_log_no_number_text_key_or_password(
        captured: io.StringIO, make_hub: Callable[..., HubThread]) -> None:
    hub = make_hub()
    key = hub.account("acme")
    hub.spool.set_password_hash("acme", hash_password(KEY_PASSWORD))
    _debug(hub)
    # SQLAlchemy keeps itself at WARNING unless told: an operator debugging SQL turns it
    # on, and its statement parameters and result rows must still say nothing.
    engine_log = logging.getLogger("sqlalchemy.engine")
    level = engine_log.level
    engine_log.setLevel(logging.DEBUG)
    try:
        _submit_by_rest_xml_and_kannel(hub, key)
    finally:
        engine_log.setLevel(level)
    logged = captured.getvalue()
    assert "sqlalchemy.engine" in logged  # the database layer did speak at debug
    for secret in (NUMBER, TEXT, "Zebra-Quokka", "Zebra", key, key.split("_", 2)[2],
                   KEY_PASSWORD):
        assert secret not in logged, secret
    # A number a line does carry is shown as its pseudonym, for correlation. Written
    # here rather than relied on from httpx's request line, which an earlier test's
    # logging set-up may have silenced.
    logging.getLogger("hub.intake").info("sent to %s", NUMBER)
    assert "27******590#" in captured.getvalue()


def _submit_by_rest_xml_and_kannel(hub: HubThread, key: str) -> None:
    auth = {"Authorization": f"Bearer {key}"}
    rest = httpx.post(f"{hub.url}/v1/messages", headers=auth,
                      json={"to": NUMBER, "text": TEXT, "class": "marketing"})
    assert rest.status_code == 202, rest.text
    xml = ('<?xml version="1.0" encoding="UTF-8"?><submitRequest xmlns="urn:smshub:xml:1">'
           f"<message><to>{NUMBER}</to><text>{TEXT}</text></message></submitRequest>")
    assert httpx.post(f"{hub.url}/xml", headers=auth, content=xml.encode()).status_code == 200
    query = urlencode({"username": "acme", "password": KEY_PASSWORD, "to": NUMBER,
                       "text": TEXT})
    kannel = httpx.get(f"{hub.url}/cgi-bin/sendsms?{query}")
    assert kannel.status_code == 202, kannel.text


def test_dialects_portal_dispatch_and_pushes_at_debug_log_no_number_text_or_password(
        captured: io.StringIO, make_hub: Callable[..., HubThread], receiver: Receiver) -> None:
    hub = make_hub(webhooks={"allow_networks": ["127.0.0.1/32"], "poll_interval": 0.05},
                   outbox={"poll_interval": 0.05})
    hub.account("acme", credits="100", price="0.25", sender_ids=("ACME",))
    hub.spool.set_password_hash("acme", hash_password(KEY_PASSWORD))
    _debug(hub)
    login = {"user": "acme", "password": KEY_PASSWORD}
    winsms = httpx.get(f"{hub.url}/api/batchmessage.asp",
                       params={**login, "message": TEXT, "numbers": NUMBER})
    assert winsms.text.startswith(f"{NUMBER}="), winsms.text
    doc = (f"<WinSMS_Multi_Message><User>acme</User><Password>{KEY_PASSWORD}</Password>"
           f"<Messages><Message><MessageText>{TEXT}</MessageText><Numbers>"
           f"<Number>{NUMBER}</Number></Numbers></Message></Messages></WinSMS_Multi_Message>")
    assert b"<MessageID>" in httpx.post(f"{hub.url}/api/xmlsendsmsmulti.asp",
                                        content=doc.encode()).content
    sent = httpx.get(f"{hub.url}/http/sendmsg",
                     params={**login, "api_id": "1", "to": NUMBER, "text": TEXT}).text
    assert sent.startswith("ID: "), sent
    query = httpx.get(f"{hub.url}/http/querymsg",
                      params={**login, "apimsgid": sent.removeprefix("ID: ")})
    assert "Status:" in query.text
    # A Kannel dlr-url naming the number: httpx logs the push's URL when it goes out.
    dlr = escape(receiver.url(f"/dlr?type=%d&to=%p&for={NUMBER}"))
    kannel = (f'<?xml version="1.0"?><message><submit><da><number>{NUMBER}</number></da>'
              f"<oa><number>ACME</number></oa><ud>{TEXT}</ud><statusrequest>"
              f"<dlr-mask>1</dlr-mask><dlr-url>{dlr}</dlr-url></statusrequest>"
              f"<from><user>acme</user><pass>{KEY_PASSWORD}</pass></from></submit></message>")
    assert httpx.post(f"{hub.url}/cgi-bin/sendsms", content=kannel.encode(),
                      headers={"Content-Type": "text/xml"}).status_code == 202
    click = (f"<clickAPI><sendMsg><api_id>1</api_id><user>acme</user>"
             f"<password>{KEY_PASSWORD}</password><to>{NUMBER}</to><text>{TEXT}</text>"
             "</sendMsg></clickAPI>")
    assert b"apiMsgId" in httpx.post(f"{hub.url}/xml/xml", data={"data": click}).content
    opened: list[httpx.Client] = []
    try:
        portal = sign_in(hub, opened, "acme", KEY_PASSWORD)
        page = portal.post("/send", data={"csrf": csrf(portal), "to": NUMBER, "text": TEXT})
        assert page.status_code == 200
    finally:
        for client in opened:
            client.close()
    # Sent by the dispatcher, delivered by the simulator's report, pushed by the outbox.
    eventually(lambda: receiver.under("/dlr"), 20, 0.05, "the delivery report's push")
    logged = captured.getvalue()
    # The dialects' request lines were logged (httpx), the number as its pseudonym only,
    # or their query hidden altogether once an HTTP upstream carrier has been built in
    # this process (adapters.carriers.http.upstream filters httpx's lines).
    assert "batchmessage.asp" in logged and "portal sign-in" in logged
    assert "numbers=" not in logged or "numbers=27******590#" in logged
    for secret in (NUMBER, NUMBER[2:], TEXT, "Zebra-Quokka", KEY_PASSWORD):
        assert secret not in logged, secret


def test_signed_webhooks_at_debug_log_no_number_text_reply_or_secret(
        captured: io.StringIO, make_hub: Callable[..., HubThread], receiver: Receiver) -> None:
    hub = make_hub(webhooks={"allow_networks": ["127.0.0.1/32"], "poll_interval": 0.05,
                             "retry_base": 0.1, "retry_cap": 0.2},
                   outbox={"poll_interval": 0.05}, simulator={"report_delay": 0.05})
    key = hub.account("acme", credits="10")
    _debug(hub)
    # An endpoint whose URL names the number, gone: the hub logs that it disabled it.
    gone = f"/gone?for={NUMBER}"
    receiver.scripts[gone] = Script(statuses=[410])
    with httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {key}"}) as c:
        secrets = [c.post("/v1/webhooks", json={"url": receiver.url(path)}).json()["secret"]
                   for path in ("/hook", gone)]
        sent = c.post("/v1/messages", json={"to": NUMBER, "text": TEXT})
        assert sent.status_code == 202, sent.text
        assert hub.hub.services is not None
        mo = InboundMessage("simulator", f"+{NUMBER}", "31337", REPLY, utcnow(), "mo-canary")
        hub.run(hub.hub.services.inbound.receive([mo]))

        def pushed() -> set[str]:
            return {verified(h, secrets[0])["type"] for h in receiver.at("/hook")}

        eventually(lambda: {"message.delivered", "inbound.received"} <= pushed(), 20, 0.05,
                   "the delivered and reply events")
        eventually(lambda: "disabled" in captured.getvalue(), 20, 0.05,
                   "the gone endpoint disabled")
    logged = captured.getvalue()
    assert "webhook endpoint" in logged  # the pushes did speak
    assert "27******590#" in logged  # the reply's number, as its pseudonym only
    for secret in (NUMBER, NUMBER[2:], TEXT, "Zebra-Quokka", REPLY, "Okapi-Narwhal", key,
                   *secrets, *(s.removeprefix("whsec_") for s in secrets)):
        assert secret not in logged, secret


BIND_PASSWORD = "Bnd-Cn9z"  # SMPP 3.4: at most 8 characters


def test_smpp_carrier_at_debug_logs_no_number_text_or_bind_password(
        captured: io.StringIO, tmp_path: Path) -> None:
    with smsc_in_thread(receipt_mode="after", id_style="padded") as smsc:
        _through_smpp(captured, tmp_path, smsc)


def _through_smpp(captured: io.StringIO, tmp_path: Path, smsc: ScriptedSmsc) -> None:
    table = CarrierTable("smsc", "smpp", {"host": "127.0.0.1", "port": smsc.port,
                                          "system_id": "hub", "password": BIND_PASSWORD},
                         "test")
    base = hub_config(tmp_path / "hub", routing={"default_carrier": "smsc"})
    hub = HubThread(replace(base, carriers={"smsc": table})).start()
    try:
        key = hub.account("acme", credits="10", price="0.25", sender_ids=("ACME",))
        _debug(hub)
        with httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {key}"}) as c:
            r = c.post("/v1/messages", json={"to": NUMBER, "text": TEXT, "from": "ACME"})
            assert r.status_code == 202, r.text
            mid = r.json()["id"]
            eventually(lambda: c.get(f"/v1/messages/{mid}").json()["status"] == "delivered",
                       what="delivered over SMPP with the SMSC's receipt")
            # The number replies: an MO deliver_sm, taken only once committed.
            loop = smsc._server.get_loop()  # type: ignore[union-attr]
            answer = asyncio.run_coroutine_threadsafe(
                smsc.push_mo(NUMBER, "ACME", REPLY.encode()), loop).result(10)
            assert answer.status == 0
            replies = c.get("/v1/inbound").json()["inbound"]
            assert [r["text"] for r in replies] == [REPLY]
    finally:
        hub.stop()
    assert [s.dest_addr for s in smsc.submits] == [NUMBER]
    logged = captured.getvalue()
    assert "adapters.carriers.smpp" in logged  # the carrier did speak
    for secret in (NUMBER, NUMBER[2:], TEXT, REPLY, "Okapi-Narwhal", BIND_PASSWORD):
        assert secret not in logged, secret
