"""Opt-outs end to end on real servers with real clients (issue #12): a handset's STOP
puts it on the account's list, after which the account's marketing messages to it are
refused in each protocol's own terms (REST, XML, FTP result rows, SMTP) and
transactional ones still go; /v1/optouts and /v1/inbound; the confirmation SMS."""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY

import httpx
import pytest
from lxml import etree

from hub.accounts import hash_password
from hub.clock import utcnow
from hub.mail import MailSettings
from hub.model import Inbound, InboundMessage, Source
from hub.optouts import NewOptOut, OptOutMethod, OptOutScope, OptOutSettings
from hub.ports import MessageFilter
from tests.ftpdrop import PASSWORD, Drop, make_drop, no_leaked_threads
from tests.hubthread import HubThread

HANDSET = "+27821234567"
DOMAIN = "sms.example.co.za"
SENDER = "ops@acme.co.za"
_ = no_leaked_threads  # the FTP test's fixture


def receive(hub: HubThread, text: str, sender: str = HANDSET,
            carrier_id: str | None = None) -> Inbound:
    """A handset's SMS as every carrier hands it in: committed through the inbound desk."""
    assert hub.hub.services is not None
    mo = InboundMessage("simulator", sender, "31337", text, utcnow(), carrier_id)
    return hub.run(hub.hub.services.inbound.receive([mo]))[0]


def json_client(hub: HubThread, key: str) -> httpx.Client:
    return httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {key}"},
                        timeout=30)


@pytest.fixture
def hub(make_hub: Callable[..., HubThread]) -> HubThread:
    return make_hub()


@pytest.fixture
def api(hub: HubThread) -> Iterator[httpx.Client]:
    with json_client(hub, hub.account("acme")) as client:
        yield client


def opted_out(hub: HubThread, api: httpx.Client) -> Inbound:
    """acme texts the handset, which answers STOP."""
    assert api.post("/v1/messages", json={"to": "0821234567", "text": "Hi"}).status_code == 202
    stop = receive(hub, "Stop")
    assert stop.kind.value == "opt_out" and stop.account_id is not None
    return stop


# --- REST ------------------------------------------------------------------------------


def test_rest_refuses_marketing_after_stop_and_still_sends_transactional(
    hub: HubThread, api: httpx.Client,
) -> None:
    stop = opted_out(hub, api)
    refused = api.post("/v1/messages", json={"to": "0821234567", "text": "Sale!",
                                              "class": "marketing"})
    assert refused.status_code == 422
    assert refused.json()["code"] == "opted_out"
    sent = api.post("/v1/messages", json={"to": "0821234567", "text": "Your OTP is 1234"})
    assert sent.status_code == 202, sent.text
    batch = api.post("/v1/messages", json={"messages": [
        {"to": "0821234567", "text": "Sale!", "class": "marketing"},
        {"to": "0831234567", "text": "Sale!", "class": "marketing"}]}).json()
    assert [r["accepted"] for r in batch["results"]] == [False, True]
    assert batch["results"][0]["error"]["code"] == "opted_out"
    [entry] = api.get("/v1/optouts").json()["optouts"]
    assert (entry["number"], entry["method"], entry["inbound_id"]) == (
        HANDSET, "reply", stop.id)


def test_the_global_block_list_refuses_every_class(hub: HubThread, api: httpx.Client) -> None:
    hub.spool.add_optout(_global(HANDSET))
    answer = api.post("/v1/messages", json={"to": "0821234567", "text": "OTP 1"})
    assert answer.status_code == 422 and answer.json()["code"] == "blocked"


def _global(number: str) -> NewOptOut:
    return NewOptOut(None, number, OptOutMethod.CLI, utcnow(), "fraud")


def test_optouts_are_added_read_listed_in_pages_and_removed(
    hub: HubThread, api: httpx.Client,
) -> None:
    added = api.post("/v1/optouts", json={"number": "083 123 4567", "reason": "phoned in"})
    assert added.status_code == 201, added.text
    assert added.json()["number"] == "+27831234567" and added.json()["method"] == "api"
    again = api.post("/v1/optouts", json={"number": "+27831234567"})
    assert again.status_code == 200 and again.json()["reason"] == "phoned in"
    for n in range(3):
        assert api.post("/v1/optouts", json={"number": f"084000000{n}"}).status_code == 201
    numbers, cursor, pages = [], None, 0
    while True:
        page = api.get("/v1/optouts", params={"limit": 2, **({"cursor": cursor}
                                                             if cursor else {})}).json()
        numbers += [o["number"] for o in page["optouts"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert numbers == ["+27831234567", "+27840000000", "+27840000001", "+27840000002"]
    assert pages == 2
    assert api.get("/v1/optouts/0831234567").json()["reason"] == "phoned in"
    assert api.delete("/v1/optouts/%2B27831234567").status_code == 204
    assert api.delete("/v1/optouts/0831234567").status_code == 404
    assert api.get("/v1/optouts/0831234567").status_code == 404
    marketing = api.post("/v1/messages", json={"to": "0840000000", "text": "Sale!",
                                                "class": "marketing"})
    assert marketing.json()["code"] == "opted_out"


def test_optouts_answer_bad_requests_with_json_errors(hub: HubThread, api: httpx.Client) -> None:
    def code(response: httpx.Response) -> tuple[int, str]:
        return response.status_code, response.json()["code"]

    assert code(api.post("/v1/optouts", json={"number": "12ab"})) == (422, "invalid_number")
    assert code(api.post("/v1/optouts", json={"to": "0821234567"})) == (422, "invalid_field")
    assert code(api.post("/v1/optouts", content=b"{")) == (400, "invalid_json")
    assert code(api.get("/v1/optouts", params={"cursor": "nonsense!"})) == (
        400, "invalid_request")
    assert code(api.get("/v1/optouts", params={"limit": "0"})) == (400, "invalid_request")
    assert code(httpx.get(f"{hub.url}/v1/optouts")) == (401, "unauthorized")
    assert code(httpx.get(f"{hub.url}/v1/inbound")) == (401, "unauthorized")


def test_an_expired_key_is_told_so_by_the_list_endpoints(hub: HubThread) -> None:
    key = hub.account("acme")
    hub.spool.set_api_key_expiry("acme", key.split("_")[1], utcnow() - timedelta(seconds=1))
    with json_client(hub, key) as expired:
        for path in ("/v1/optouts", "/v1/inbound"):
            answer = expired.get(path)
            assert answer.status_code == 401
            assert answer.json()["code"] == "key_expired"


def test_another_accounts_list_is_neither_seen_nor_enforced(
    hub: HubThread, api: httpx.Client,
) -> None:
    opted_out(hub, api)
    with json_client(hub, hub.account("other")) as other:
        assert other.get("/v1/optouts").json() == {"optouts": [], "next_cursor": None}
        assert other.get("/v1/inbound").json()["inbound"] == []
        sent = other.post("/v1/messages", json={"to": "0821234567", "text": "Sale!",
                                                 "class": "marketing"})
        assert sent.status_code == 202


def test_inbound_is_listed_in_pages_and_since_a_time(hub: HubThread, api: httpx.Client) -> None:
    sent = api.post("/v1/messages", json={"to": "0821234567", "text": "Coming?"}).json()
    replies = [receive(hub, f"reply {n}") for n in range(5)]
    seen, cursor = [], None
    while True:
        page = api.get("/v1/inbound", params={"limit": 2, **({"cursor": cursor}
                                                             if cursor else {})}).json()
        seen += page["inbound"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [m["text"] for m in seen] == [f"reply {n}" for n in range(5)]
    first = seen[0]
    assert (first["from"], first["to"], first["kind"], first["in_reply_to"]) == (
        HANDSET, "31337", "reply", sent["id"])
    since = replies[3].received_at.isoformat()
    recent = api.get("/v1/inbound", params={"since": since}).json()["inbound"]
    assert [m["text"] for m in recent] == ["reply 3", "reply 4"]
    bad = api.get("/v1/inbound", params={"since": "yesterday"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_time"


# --- the confirmation SMS ----------------------------------------------------------------


def test_a_stop_is_confirmed_once_by_sms_when_the_account_asks(
    hub: HubThread, api: httpx.Client,
) -> None:
    account = hub.spool.get_account("acme")
    hub.spool.save_optout_settings(OptOutSettings(account.id, OptOutScope.ALL, confirm=True))
    assert api.post("/v1/messages", json={"to": "0821234567", "text": "Hi"}).status_code == 202
    stop = receive(hub, "STOP", carrier_id="mo-7")
    receive(hub, "STOP", carrier_id="mo-7")  # the carrier delivers it again
    receive(hub, "stop")  # the number is on the list already: nothing new to confirm
    found = hub.spool.list_messages(MessageFilter(account_id=account.id))
    [confirmation] = [m for m in found if m.source is Source.HUB]
    assert (confirmation.recipient, confirmation.message_class.value) == (
        HANDSET, "transactional")
    assert "unsubscribed" in confirmation.text
    assert confirmation.client_ref == f"optout-{stop.id}"
    # Scope all: the account's own transactional messages stop too.
    refused = api.post("/v1/messages", json={"to": "0821234567", "text": "OTP"})
    assert refused.json()["code"] == "opted_out"


def test_no_confirmation_unless_the_account_asks(hub: HubThread, api: httpx.Client) -> None:
    opted_out(hub, api)
    account = hub.spool.get_account("acme")
    found = hub.spool.list_messages(MessageFilter(account_id=account.id))
    assert [m.source for m in found] == [Source.REST]


# --- XML -------------------------------------------------------------------------------

NS = "urn:smshub:xml:1"


def xml_submit(api: httpx.Client, message_class: str) -> tuple[str, str | None]:
    body = (f'<?xml version="1.0" encoding="UTF-8"?><submitRequest xmlns="{NS}"><message>'
            f"<to>0821234567</to><text>Hello</text><class>{message_class}</class>"
            "</message></submitRequest>").encode()
    answer = api.post("/xml", content=body)
    assert answer.status_code == (200 if message_class == "transactional" else 422)
    result = etree.fromstring(answer.content)[0]
    return etree.QName(result).localname, result.get("code")


def test_xml_refuses_marketing_after_stop_and_still_sends_transactional(
    hub: HubThread, api: httpx.Client,
) -> None:
    opted_out(hub, api)
    assert xml_submit(api, "marketing") == ("rejected", "opted_out")
    assert xml_submit(api, "transactional") == ("accepted", None)


# --- FTP -------------------------------------------------------------------------------


@pytest.fixture
def drop(no_leaked_threads: None, make_hub: Callable[..., HubThread]) -> Drop:
    return make_drop(make_hub)


def test_ftp_result_rows_refuse_marketing_after_stop_and_send_transactional(
    drop: Drop,
) -> None:
    drop.upload("first.csv", "to,text\n0821234567,Hi\n")
    assert drop.result("first.csv")[1][3] == "accepted"
    receive(drop.hub, "STOP")
    drop.upload("promo.csv", "to,text,class\n0821234567,Sale!,marketing\n"
                             "0821234567,Your OTP is 1,transactional\n")
    rows = drop.result("promo.csv")
    assert rows[1][3] == "rejected" and rows[1][7].startswith("opted_out")
    assert rows[2][3] == "accepted"


# --- SMTP ------------------------------------------------------------------------------


@pytest.fixture
def mail_hub(make_hub: Callable[..., HubThread], tls_files: dict[str, str]) -> HubThread:
    hub = make_hub(smtp={"enabled": True, "port": 0, "domains": [DOMAIN], **tls_files})
    hub.account("acme")
    account = hub.spool.get_account("acme")
    hub.spool.set_password_hash("acme", hash_password(PASSWORD))
    hub.spool.save_mail_settings(MailSettings(account.id, (SENDER,)))
    return hub


def send_mail(hub: HubThread, to: str) -> tuple[int, str]:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = SENDER, to, "Alert"
    message.set_content("Server down")
    assert hub.hub.smtp_port is not None
    with smtplib.SMTP("127.0.0.1", hub.hub.smtp_port, timeout=10) as client:
        client.ehlo("client.example")
        client.mail(SENDER)
        client.rcpt(to)
        code, reply = client.data(message.as_bytes(policy=SMTP_POLICY))
    return code, reply.decode()


def test_smtp_sends_after_stop_unless_the_account_stops_every_class(mail_hub: HubThread) -> None:
    # Email makes transactional SMS: they pass a STOP unless the account's scope is all.
    assert send_mail(mail_hub, f"27821234567@{DOMAIN}")[0] == 250
    receive(mail_hub, "STOP")
    assert send_mail(mail_hub, f"27821234567@{DOMAIN}")[0] == 250
    account = mail_hub.spool.get_account("acme")
    mail_hub.spool.save_optout_settings(OptOutSettings(account.id, OptOutScope.ALL))
    code, reply = send_mail(mail_hub, f"27821234567@{DOMAIN}")
    assert code == 550 and "opted out" in reply and "4567" not in reply  # masked
    assert send_mail(mail_hub, f"27831234567@{DOMAIN}")[0] == 250


# --- the XML dialects' own words ------------------------------------------------------------


def test_dialects_answer_a_blocked_number_in_their_own_terms(hub: HubThread) -> None:
    hub.account("acme", sender_ids=("ACME",))
    hub.spool.set_password_hash("acme", hash_password("secret"))
    hub.spool.add_optout(_global(HANDSET))
    kannel = httpx.post(f"{hub.url}/cgi-bin/sendsms", headers={"Content-Type": "text/xml"},
                        content=b"<message><submit><da><number>27821234567</number></da>"
                                b"<ud>Hi</ud><from><user>acme</user><pass>secret</pass>"
                                b"</from></submit></message>")
    assert (kannel.status_code, kannel.text) == (
        400, "Number(s) has/have been denied by white- and/or black-lists.")
    data = ("<clickAPI><sendMsg><api_id>1</api_id><user>acme</user><password>secret"
            "</password><to>27821234567</to><text>Hi</text></sendMsg></clickAPI>")
    clickatell = httpx.post(f"{hub.url}/xml/xml", data={"data": data})
    fault = etree.fromstring(clickatell.content).find(".//fault")
    assert fault is not None and fault.text == "121, Destination mobile number blocked"
