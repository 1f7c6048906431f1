"""The HTTP upstream carrier in a real hub, against fake providers that follow their
documents (tests/providers.py): messages POSTed to the hub's JSON API reach the provider
through the dispatcher, the provider's answers become submitted / retried / rejected, and
its delivery-report and reply callbacks come back through the hub's HTTP listener."""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from ulid import ULID

from adapters.carriers.http.callbacks import CallbackRoutes
from adapters.carriers.http.config import settings_from
from adapters.carriers.http.upstream import HttpUpstreamCarrier
from hub import cpa
from hub.clock import utcnow
from hub.config import CarrierTable, load
from hub.model import (
    DeliveryReport,
    Encoding,
    InboundMessage,
    Message,
    MessageClass,
    Source,
    Status,
    Verdict,
)
from tests.hubthread import HubThread
from tests.polling import eventually
from tests.providers import BulkSms, Clickatell, FakeServer, Reply, SmsPortal, basic

SECRET = "cb-secret-0123456789abcdef"
START = """
[hub]
data_dir = "{data}"
node = "test-node"
[http]
port = 0
[dispatcher]
poll_interval = 0.05
retry_base = 0.05
retry_cap = 0.2
[routing]
default_carrier = "{carrier}"
"""
StartHub = Callable[[str, str], HubThread]


def smsportal_table(fake: SmsPortal) -> str:
    return f"""
[carriers.portal]
type = "http"
template = "smsportal"
url = "{fake.url}/v1/bulkmessages"
token_url = "{fake.url}/v1/Authentication"
username = "{fake.client_id}"
password = "{fake.secret}"
timeout = 0.5
callback_secret = "{SECRET}"
"""


def bulksms_table(fake: BulkSms) -> str:
    return f"""
[carriers.bulk]
type = "http"
template = "bulksms"
url = "{fake.url}/eapi/submission/send_sms/2/2.0"
keys = {{ username = "{fake.username}", password = "{fake.password}" }}
timeout = 0.3
callback_secret = "{SECRET}"
"""


@pytest.fixture
def start_hub(tmp_path: Path, hubs: list[HubThread]) -> StartHub:
    def start(carrier: str, tables: str) -> HubThread:
        path = tmp_path / "hub.toml"
        path.write_text(START.format(data=tmp_path / "data", carrier=carrier) + tables)
        hub = HubThread(load(path, env={})).start()
        hubs.append(hub)
        return hub

    return start


def serve(fake: Any) -> Iterator[Any]:
    server = FakeServer(fake.app()).start()
    fake.url = server.url
    yield fake
    server.stop()


@pytest.fixture
def smsportal() -> Iterator[SmsPortal]:
    yield from serve(SmsPortal())


@pytest.fixture
def bulksms() -> Iterator[BulkSms]:
    yield from serve(BulkSms())


@pytest.fixture
def clickatell() -> Iterator[Clickatell]:
    yield from serve(Clickatell())


@pytest.fixture
def portal_hub(smsportal: SmsPortal, start_hub: StartHub) -> HubThread:
    return start_hub("portal", smsportal_table(smsportal))


@pytest.fixture
def bulk_hub(bulksms: BulkSms, start_hub: StartHub) -> HubThread:
    return start_hub("bulk", bulksms_table(bulksms))


def send(hub: HubThread, *messages: dict[str, str]) -> list[str]:
    """POST messages to the hub's JSON API as account 'acme'; their ids."""
    key = hub.account("acme", credits="10", price="0.25", sender_ids=("ACME",))
    with httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {key}"}) as c:
        r = c.post("/v1/messages", json={"messages": list(messages)})
    assert r.status_code == 202 and r.json()["refused"] == 0, r.text
    return [item["id"] for item in r.json()["results"]]


def settled(hub: HubThread, message_id: str, *statuses: Status) -> Message:
    def check() -> Message | None:
        message = hub.spool.get_message(message_id)
        return message if message is not None and message.status in statuses else None

    found = eventually(check, 15, 0.02, f"{message_id} in {statuses}")
    assert found is not None
    return found


def callback(hub: HubThread, method: str, path: str, **kwargs: Any) -> httpx.Response:
    with httpx.Client(base_url=hub.url) as client:
        return client.request(method, path, **kwargs)


def details(hub: HubThread, message_id: str) -> list[str]:
    return [e.detail for e in hub.spool.events(message_id)]


# --- SMSPortal ------------------------------------------------------------------------


def test_smsportal_message_is_submitted_with_its_event_id_and_delivered_by_a_v2_report(
        portal_hub: HubThread, smsportal: SmsPortal) -> None:
    [mid] = send(portal_hub, {"to": "082 123 4567", "text": "Hello", "from": "ACME"})
    message = settled(portal_hub, mid, Status.SUBMITTED)
    [seen] = smsportal.requests
    assert seen.body == {"Messages": [{"Content": "Hello", "Destination": "27821234567"}]}
    assert seen.headers["authorization"] == "Bearer jwt-1"
    assert message.carrier == "portal"
    assert message.carrier_message_id == "12345678901:27821234567"
    r = callback(portal_hub, "POST", f"/carriers/portal/dlr/{SECRET}", json={
        "Status": "DELIVRD", "EventId": 12345678901, "Mcc": 655, "Mnc": "01", "MsgCount": 1,
        "Msisdn": "27821234567", "Received": 1530013907, "UserReference": ""})
    assert r.status_code == 200, r.text
    # Answered only after the commit: the message is delivered the moment 200 arrives.
    delivered = portal_hub.spool.get_message(mid)
    assert delivered is not None and delivered.status is Status.DELIVERED


def test_smsportal_batch_goes_in_one_request_and_a_fault_rejects_only_its_message(
        portal_hub: HubThread, smsportal: SmsPortal) -> None:
    smsportal.refuse["27821234568"] = "Invalid destination"
    ids = send(portal_hub, *({"to": f"+2782123456{n}", "text": f"Hi {n}", "from": "ACME"}
                             for n in (7, 8, 9)))
    first, bad, last = (settled(portal_hub, i, Status.SUBMITTED, Status.REJECTED) for i in ids)
    [seen] = smsportal.requests
    assert [m["Destination"] for m in seen.body["Messages"]] == [
        "27821234567", "27821234568", "27821234569"]
    assert first.status is Status.SUBMITTED and last.status is Status.SUBMITTED
    assert bad.status is Status.REJECTED
    assert bad.error is not None and "Invalid destination" in bad.error.text
    assert portal_hub.spool.get_account("acme").balance == 10 - 2 * 0.25
    # Webhook V1 (GET) for the last one: undelivered.
    r = callback(portal_hub, "GET", f"/carriers/portal/dlr/{SECRET}", params={
        "ID": "1", "EventID": "12345678901", "Phonenumber": "27821234569", "DataType": "SMS",
        "Data": "Hi 9", "SentDataTime": "01/Jan/2021 14:04:22", "Status": "UNDELIV",
        "CustomerID": ""})
    assert r.status_code == 200
    undelivered = portal_hub.spool.get_message(ids[2])
    assert undelivered is not None and undelivered.status is Status.UNDELIVERED


def test_smsportal_429_with_retry_after_holds_the_next_request_back(
        portal_hub: HubThread, smsportal: SmsPortal) -> None:
    smsportal.script.append(Reply(429, "slow down", {"Retry-After": "1"}))
    [mid] = send(portal_hub, {"to": "+27821234567", "text": "Hello"})
    settled(portal_hub, mid, Status.SUBMITTED)
    throttled, taken = smsportal.requests
    assert taken.at - throttled.at >= 0.95
    assert any("http_429" in d or "slow down" in d for d in details(portal_hub, mid))


def test_smsportal_reply_callback_is_stored_as_inbound_linked_to_the_message(
        portal_hub: HubThread) -> None:
    [mid] = send(portal_hub, {"to": "+27821234567", "text": "Coming?"})
    settled(portal_hub, mid, Status.SUBMITTED)
    r = callback(portal_hub, "GET", f"/carriers/portal/mo/{SECRET}", params={
        "IncomingID": "555", "Phonenumber": "27821234567", "IncomingData": "Yes please",
        "IncomingDataTime": "01/Jan/2021 14:05:00", "SentID": "1", "EventID": "12345678901",
        "SentData": "Coming?", "SentDataTime": "01/Jan/2021 14:04:22", "CustomerID": "",
        "Campaign": "", "SentMessageGRPName": "", "SentMessageGRPDesc": "",
        "NumberValue1": ""})
    assert r.status_code == 200
    account = portal_hub.spool.get_account("acme")
    [reply] = portal_hub.spool.list_inbound(account.id, None, 10)
    assert (reply.carrier, reply.sender, reply.text) == ("portal", "+27821234567", "Yes please")
    assert reply.carrier_message_id == "555" and reply.in_reply_to == mid


def test_callbacks_with_a_wrong_or_missing_secret_are_refused_and_store_nothing(
        portal_hub: HubThread) -> None:
    [mid] = send(portal_hub, {"to": "+27821234567", "text": "Hello"})
    settled(portal_hub, mid, Status.SUBMITTED)
    report = {"Status": "DELIVRD", "EventId": 12345678901, "Msisdn": "27821234567"}
    reply = {"IncomingID": "9", "Phonenumber": "27821234567", "IncomingData": "STOP"}
    assert callback(portal_hub, "POST", "/carriers/portal/dlr/wrong-secret-0123456789",
                    json=report).status_code == 403
    assert callback(portal_hub, "POST", "/carriers/portal/dlr", json=report).status_code == 401
    assert callback(portal_hub, "GET", "/carriers/portal/mo/wrong-secret-0123456789",
                    params=reply).status_code == 403
    assert callback(portal_hub, "GET", "/carriers/portal/mo", params=reply).status_code == 401
    message = portal_hub.spool.get_message(mid)
    assert message is not None and message.status is Status.SUBMITTED
    account = portal_hub.spool.get_account("acme")
    assert portal_hub.spool.list_inbound(account.id, None, 10) == []


def test_an_unreadable_report_is_answered_400_and_an_unknown_word_is_intermediate(
        portal_hub: HubThread) -> None:
    [mid] = send(portal_hub, {"to": "+27821234567", "text": "Hello"})
    settled(portal_hub, mid, Status.SUBMITTED)
    path = f"/carriers/portal/dlr/{SECRET}"
    r = callback(portal_hub, "POST", path, json={"Status": "DELIVRD"})
    assert r.status_code == 400 and "EventId" in r.text
    r = callback(portal_hub, "POST", path, json={
        "Status": "SOMETHING", "EventId": 12345678901, "Msisdn": "27821234567"})
    assert r.status_code == 200
    message = portal_hub.spool.get_message(mid)
    assert message is not None and message.status is Status.SUBMITTED


# --- BulkSMS --------------------------------------------------------------------------


def test_bulksms_sends_the_documented_form_and_its_report_push_delivers(
        bulk_hub: HubThread, bulksms: BulkSms) -> None:
    [mid] = send(bulk_hub, {"to": "+27821234567", "text": "Café costs £5", "from": "ACME"})
    message = settled(bulk_hub, mid, Status.SUBMITTED)
    [seen] = bulksms.requests
    assert seen.body == {"username": "bulk-user", "password": "bulk-pass-0815",
                         "msisdn": "27821234567", "message": "Café costs £5",
                         "sender": "ACME", "want_report": "1"}
    assert message.carrier_message_id == "71070172"
    path = f"/carriers/bulk/dlr/{SECRET}"
    params = {"msisdn": "27821234567", "batch_id": "71070172", "completed_time": "x"}
    r = callback(bulk_hub, "GET", path, params=params | {"status": "10"})  # upstream
    assert r.status_code == 200 and r.text  # BulkSMS wants at least one character
    still = bulk_hub.spool.get_message(mid)
    assert still is not None and still.status is Status.SUBMITTED
    r = callback(bulk_hub, "GET", path, params=params | {"status": "11"})  # to mobile
    assert r.status_code == 200
    delivered = bulk_hub.spool.get_message(mid)
    assert delivered is not None and delivered.status is Status.DELIVERED


def test_bulksms_unicode_goes_as_16bit_hex(bulk_hub: HubThread, bulksms: BulkSms) -> None:
    [mid] = send(bulk_hub, {"to": "+27821234567", "text": "Привет"})
    settled(bulk_hub, mid, Status.SUBMITTED)
    [seen] = bulksms.requests
    assert seen.body["dca"] == "16bit"
    assert bytes.fromhex(seen.body["message"]).decode("utf-16-be") == "Привет"
    assert "sender" not in seen.body  # no sender: the field is left out, not sent blank


def test_bulksms_permanent_error_rejects_with_the_providers_reason(
        bulk_hub: HubThread, bulksms: BulkSms) -> None:
    bulksms.refuse["27821234568"] = "24|Data validation failed"
    [mid] = send(bulk_hub, {"to": "+27821234568", "text": "Hello"})
    message = settled(bulk_hub, mid, Status.REJECTED)
    assert message.error is not None
    assert (message.error.code, message.error.text) == ("upstream_24", "Data validation failed")
    assert bulk_hub.spool.get_account("acme").balance == 10  # refunded
    assert len(bulksms.requests) == 1  # never retried


def test_bulksms_server_error_and_timeout_are_retried_until_it_is_taken(
        bulk_hub: HubThread, bulksms: BulkSms) -> None:
    bulksms.script.extend([Reply(500, "Internal Server Error"), Reply(delay=0.6)])
    [mid] = send(bulk_hub, {"to": "+27821234567", "text": "Hello"})
    message = settled(bulk_hub, mid, Status.SUBMITTED)
    assert message.attempts == 3 and len(bulksms.requests) == 3
    retries = [d for d in details(bulk_hub, mid) if d.startswith("retry at")]
    assert len(retries) == 2
    assert "Internal Server Error" in retries[0] and "no answer within 0.3 s" in retries[1]


def test_bulksms_status_40_is_retried(bulk_hub: HubThread, bulksms: BulkSms) -> None:
    bulksms.script.append(Reply(200, "40|TEMPORARILY_UNAVAILABLE"))
    [mid] = send(bulk_hub, {"to": "+27821234567", "text": "Hello"})
    settled(bulk_hub, mid, Status.SUBMITTED)
    assert len(bulksms.requests) == 2


def test_credentials_never_reach_the_logs(bulk_hub: HubThread, bulksms: BulkSms,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bulksms.script.append(Reply(500, "oops"))
    [mid] = send(bulk_hub, {"to": "+27821234567", "text": "Hello"})
    settled(bulk_hub, mid, Status.SUBMITTED)
    callback(bulk_hub, "GET", f"/carriers/bulk/dlr/{SECRET}",
             params={"batch_id": "71070172", "status": "11"})
    callback(bulk_hub, "GET", "/carriers/bulk/dlr/not-the-secret-at-all",
             params={"batch_id": "71070172", "status": "11"})
    # Left out: what this thread logged (it plays the provider, with httpx), and uvicorn's
    # access log, which names the path: off in the hub (access_log=False), but pytest
    # attaches its capture handler to that logger all the same.
    logged = "\n".join(r.getMessage() for r in caplog.records
                        if r.name != "uvicorn.access" and r.thread != threading.get_ident())
    assert "HTTP Request" in logged or "bulk" in logged  # the logs were captured
    for secret in (BulkSms.password, SECRET, "not-the-secret-at-all"):
        assert secret not in logged


# --- Clickatell -----------------------------------------------------------------------


def test_clickatell_submit_and_a_report_with_http_basic_credentials(
        clickatell: Clickatell, start_hub: StartHub) -> None:
    hub = start_hub("click", f"""
[carriers.click]
type = "http"
template = "clickatell"
url = "{clickatell.url}/http/sendmsg"
callback_username = "clickatell"
callback_secret = "{SECRET}"
[carriers.click.keys]
api_id = "{clickatell.api_id}"
user = "{clickatell.user}"
password = "{clickatell.password}"
""")
    clickatell.refuse["27821234568"] = "114, Cannot route message"
    good, bad = send(hub, {"to": "+27821234567", "text": "Hello", "from": "ACME"},
                     {"to": "+27821234568", "text": "Hello"})
    message = settled(hub, good, Status.SUBMITTED)
    refused = settled(hub, bad, Status.REJECTED)
    assert refused.error is not None and refused.error.text == "Cannot route message"
    apimsgid = message.carrier_message_id
    assert apimsgid is not None
    seen = next(s for s in clickatell.requests if s.body["to"] == "27821234567")
    assert seen.body["climsgid"] == good and seen.body["from"] == "ACME"
    report = {"api_id": clickatell.api_id, "apiMsgId": apimsgid, "cliMsgId": good,
              "timestamp": "1218007814", "to": "27821234567", "from": "ACME",
              "status": "004", "charge": "1.0"}
    assert callback(hub, "POST", "/carriers/click/dlr", data=report).status_code == 401
    assert callback(hub, "POST", "/carriers/click/dlr", data=report, headers={
        "Authorization": basic("clickatell", "wrong")}).status_code == 403
    r = callback(hub, "POST", "/carriers/click/dlr", data=report,
                 headers={"Authorization": basic("clickatell", SECRET)})
    assert r.status_code == 200
    delivered = hub.spool.get_message(good)
    assert delivered is not None and delivered.status is Status.DELIVERED


async def test_one_recipients_requests_go_one_after_the_other(bulksms: BulkSms) -> None:
    table = CarrierTable("bulk", "http", {
        "template": "bulksms", "url": f"{bulksms.url}/eapi/submission/send_sms/2/2.0",
        "keys": {"username": bulksms.username, "password": bulksms.password}}, "hub.toml")
    carrier = HttpUpstreamCarrier(settings_from(table))
    await carrier.start(NoSink())
    # The first two answers are slow, whichever of "first" and "other" arrives first.
    bulksms.script.extend([Reply(delay=1.0), Reply(delay=1.0)])
    try:
        first, other, second = (new(n, text) for n, text in (
            ("+27821111111", "first"), ("+27822222222", "other"), ("+27821111111", "second")))
        results = await carrier.submit([first, other, second])
    finally:
        await carrier.stop()
    assert [r.verdict for r in results] == [Verdict.SUBMITTED] * 3
    at = {seen.body["message"]: seen.at for seen in bulksms.requests}
    # Other numbers do not wait for the first answer (a margin for a loaded machine);
    # the same number does.
    assert at["other"] - at["first"] < 0.8
    assert at["second"] - at["first"] >= 1.0


async def test_a_recipients_later_requests_wait_for_one_sent_back_to_the_queue(
    bulksms: BulkSms,
) -> None:
    """The provider answers a number's first request with a temporary error: the number's
    later messages are not sent past it (they would arrive first once it is retried) but
    go back to the queue behind it; another number's request still goes out (answered
    the same way: the two go at once, so either may come first)."""
    table = CarrierTable("bulk", "http", {
        "template": "bulksms", "url": f"{bulksms.url}/eapi/submission/send_sms/2/2.0",
        "keys": {"username": bulksms.username, "password": bulksms.password}}, "hub.toml")
    carrier = HttpUpstreamCarrier(settings_from(table))
    await carrier.start(NoSink())
    bulksms.script.extend([Reply(status=503, body="busy"), Reply(status=503, body="busy")])
    try:
        messages = [new(n, text) for n, text in (
            ("+27821111111", "first"), ("+27821111111", "second"),
            ("+27821111111", "third"), ("+27822222222", "other"))]
        results = await carrier.submit(messages)
    finally:
        await carrier.stop()
    verdicts = [(r.verdict, r.error.code if r.error else None) for r in results]
    assert verdicts == [(Verdict.RETRY, "http_503"), (Verdict.RETRY, "held_for_order"),
                        (Verdict.RETRY, "held_for_order"), (Verdict.RETRY, "http_503")]
    assert sorted(seen.body["message"] for seen in bulksms.requests) == ["first", "other"]


async def test_marketing_whose_turn_comes_after_closing_time_is_not_sent(
    bulksms: BulkSms,
) -> None:
    """CPA regulation 4 at the carrier: a marketing message waiting behind a slow request
    to the same number (or for a connection) is not sent once its `send_by` has passed;
    the result says why, and the provider never sees it."""
    table = CarrierTable("bulk", "http", {
        "template": "bulksms", "url": f"{bulksms.url}/eapi/submission/send_sms/2/2.0",
        "keys": {"username": bulksms.username, "password": bulksms.password}}, "hub.toml")
    carrier = HttpUpstreamCarrier(settings_from(table))
    await carrier.start(NoSink())
    bulksms.script.extend([Reply(delay=1.0)])
    closing = utcnow() + timedelta(seconds=0.5)
    try:
        first = new("+27821111111", "first")
        late = [replace(new("+27821111111", text), message_class=MessageClass.MARKETING,
                        send_by=closing) for text in ("second", "third")]
        results = await carrier.submit([first, *late])
    finally:
        await carrier.stop()
    assert results[0].verdict is Verdict.SUBMITTED
    for r in results[1:]:
        assert r.verdict is Verdict.RETRY and r.error is not None
        assert r.error.code == cpa.HELD and "hours closed" in r.error.text
    assert [seen.body["message"] for seen in bulksms.requests] == ["first"]


class NoSink:
    async def report(self, reports: Sequence[DeliveryReport]) -> None:
        raise AssertionError("no reports expected")

    async def inbound(self, messages: Sequence[InboundMessage]) -> None:
        raise AssertionError("no replies expected")


def new(recipient: str, text: str) -> Message:
    now = utcnow()
    return Message(str(ULID()), 1, Source.REST, recipient, text, Encoding.GSM7, 1,
                   Decimal("0.25"), Status.SENDING, 1, MessageClass.TRANSACTIONAL, 0, now, now,
                   now)


@pytest.mark.parametrize(("auth", "headers", "status"), [
    ("header", {}, 401), ("header", {"X-Hook": "wrong-secret-0123456789"}, 403),
    ("header", {"X-Hook": "hook-secret-0123456789"}, 503),  # accepted; no sink yet
    ("basic", {}, 401), ("basic", {"Authorization": "Basic !!"}, 403),
    ("basic", {"Authorization": "basic " + base64.b64encode(
        b"hub:hook-secret-0123456789").decode()}, 503),
])
def test_header_and_basic_callback_credentials(auth: str, headers: dict[str, str],
                                               status: int) -> None:
    table = CarrierTable("up", "http", {
        "template": "smsportal", "username": "c", "password": "p", "callback_auth": auth,
        "callback_header": "X-Hook", "callback_username": "hub",
        "callback_secret": "hook-secret-0123456789"}, "hub.toml")
    routes = CallbackRoutes("up", settings_from(table).callbacks, lambda: None, utcnow).routes()
    assert [r.path for r in routes if isinstance(r, Route)] == [  # no secret path segment
        "/carriers/up/dlr", "/carriers/up/mo"]
    server = FakeServer(Starlette(routes=routes)).start()
    try:
        r = httpx.get(f"{server.url}/carriers/up/dlr", headers=headers, params={
            "EventId": "1", "Msisdn": "2782", "Status": "DELIVRD"})
    finally:
        server.stop()
    assert r.status_code == status
