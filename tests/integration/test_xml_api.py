"""The native XML API (`POST /xml`) on a real uvicorn server, driven by httpx: every
operation, every way to authenticate, per-recipient outcomes, limits and schema errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal

import httpx
import pytest
from lxml import etree

from adapters.carriers.simulator import SimulatorCarrier, SimulatorRules
from hub.accounts import hash_password
from tests.factories import sa_minute_ahead
from tests.hubthread import HubThread

MakeHub = Callable[..., HubThread]
NS = "urn:smshub:xml:1"
N = {"s": NS}


def doc(root: str, body: str) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?><{root} xmlns="{NS}">{body}</{root}>'.encode()


def message(*to: str, text: str = "Hello", extra: str = "") -> str:
    recipients = "".join(f"<to>{t}</to>" for t in to)
    return f"<message>{recipients}<text>{text}</text>{extra}</message>"


def parse(response: httpx.Response) -> etree._Element:
    assert response.headers["content-type"].startswith("application/xml"), response.text
    return etree.fromstring(response.content)


@pytest.fixture
def hub(make_hub: MakeHub) -> HubThread:
    return make_hub(xml={"max_messages": 10_000})


@pytest.fixture
def key(hub: HubThread) -> str:
    return hub.account("acme", credits="10", price="0.25", sender_ids=("ACME",))


@pytest.fixture
def client(hub: HubThread, key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {key}"},
                      timeout=30) as c:
        yield c


def test_submit_answers_each_recipient_in_order_and_a_bad_number_fails_only_itself(
    client: httpx.Client, hub: HubThread
) -> None:
    body = doc("submitRequest", message("0821234567", "not-a-number", "+27821234568",
                                        extra="<from>ACME</from>") + message("0821234569"))
    r = client.post("/xml", content=body)
    assert r.status_code == 200, r.text
    root = parse(r)
    assert root.tag == f"{{{NS}}}submitResponse"
    assert (root.get("accepted"), root.get("rejected")) == ("3", "1")
    results = [(etree.QName(e).localname, e.get("message"), e.get("to")) for e in root]
    assert results == [("accepted", "1", "0821234567"), ("rejected", "1", "not-a-number"),
                       ("accepted", "1", "+27821234568"), ("accepted", "2", "0821234569")]
    assert root[1].get("code") == "invalid_number"
    assert root[0].get("segments") == "1" and Decimal(root[0].get("cost", "")) == Decimal("0.25")
    stored = hub.spool.get_message(root[0].get("id", ""))
    assert stored is not None and stored.recipient == "+27821234567"
    assert stored.sender == "ACME" and stored.source.value == "xml"
    assert hub.spool.get_account("acme").balance == Decimal("9.25")


def test_every_response_document_is_valid_against_the_schema(
    client: httpx.Client, hub: HubThread
) -> None:
    schema = etree.XMLSchema(etree.parse("schemas/smshub-1.xsd"))
    answers = [
        client.post("/xml", content=doc("submitRequest", message("0821234567", "x"))),
        client.post("/xml", content=doc("statusRequest", "<id>nope</id><clientRef>r</clientRef>")),
        client.post("/xml", content=doc("balanceRequest", "")),
        client.post("/xml", content=doc("repliesRequest", "")),
        client.post("/xml", content=doc("submitRequest", "<message/>")),
        client.post("/xml", content=b"<oops"),
    ]
    for r in answers:
        assert schema.validate(parse(r)), (r.text, schema.error_log)


def test_text_outside_gsm7_is_sent_as_ucs2_with_its_segment_count(
    client: httpx.Client, hub: HubThread
) -> None:
    r = client.post("/xml", content=doc("submitRequest", message("0821234567", text="Ш" * 71)))
    accepted = parse(r)[0]
    assert accepted.get("segments") == "2"
    stored = hub.spool.get_message(accepted.get("id", ""))
    assert stored is not None and stored.encoding.value == "ucs2"


def test_all_optional_fields_reach_the_stored_message(client: httpx.Client, hub: HubThread) -> None:
    at = sa_minute_ahead()  # written without an offset: SAST, the hub's zone
    extra = ("<from>ACME</from><clientRef>order-1</clientRef>"
             f"<sendAt>{at:%Y-%m-%dT%H:%M:%S}</sendAt><validity>3600</validity>"
             "<class>marketing</class><priority>7</priority>")
    r = client.post("/xml", content=doc("submitRequest", message("0821234567", extra=extra)))
    accepted = parse(r)[0]
    assert accepted.get("status") == "scheduled" and accepted.get("clientRef") == "order-1"
    m = hub.spool.get_message(accepted.get("id", ""))
    assert m is not None and m.send_at is not None and m.expires_at is not None
    assert m.send_at == at
    assert (m.expires_at - m.send_at).total_seconds() == 3600
    assert (m.message_class.value, m.priority, m.client_ref) == ("marketing", 7, "order-1")


def test_same_client_ref_again_is_a_duplicate_and_not_charged_twice(
    client: httpx.Client, hub: HubThread
) -> None:
    body = doc("submitRequest", message("0821234567", extra="<clientRef>r1</clientRef>"))
    first = parse(client.post("/xml", content=body))
    again = parse(client.post("/xml", content=body))
    assert again[0].get("duplicate") == "true" and again[0].get("id") == first[0].get("id")
    assert hub.spool.get_account("acme").balance == Decimal("9.75")


def test_several_recipients_take_a_client_ref_each(client: httpx.Client) -> None:
    shared = doc("submitRequest", message("0821234567", "0821234568",
                                          extra="<clientRef>r</clientRef>"))
    codes = [e.get("code") for e in parse(client.post("/xml", content=shared))]
    assert codes == ["invalid_client_ref", "invalid_client_ref"]
    own = doc("submitRequest", '<message><to clientRef="a">0821234567</to>'
              '<to clientRef="b">0821234568</to><text>x</text></message>')
    assert [e.get("clientRef") for e in parse(client.post("/xml", content=own))] == ["a", "b"]


def test_status_request_answers_many_ids_in_order(client: httpx.Client, key: str) -> None:
    sent = parse(client.post("/xml", content=doc("submitRequest", message("0821234567"))))
    ident = sent[0].get("id", "")
    r = client.post("/xml", content=doc("statusRequest", f"<id>{ident}</id><id>missing</id>"))
    root = parse(r)
    assert [etree.QName(e).localname for e in root] == ["message", "notFound"]
    assert root[0].get("id") == ident and root[0].get("to") == "+27821234567"
    assert root[0].get("state") in {"pending", "delivered"}
    assert root[1].get("id") == "missing"


def test_status_of_another_accounts_message_is_not_found(
    client: httpx.Client, hub: HubThread
) -> None:
    other = hub.account("other")
    sent = parse(client.post("/xml", content=doc("submitRequest", message("0821234567"))))
    r = httpx.post(f"{hub.url}/xml", headers={"Authorization": f"Bearer {other}"},
                   content=doc("statusRequest", f"<id>{sent[0].get('id')}</id>"))
    assert etree.QName(parse(r)[0]).localname == "notFound"


def test_balance_is_read_fresh_after_a_submit(client: httpx.Client) -> None:
    client.post("/xml", content=doc("submitRequest", message("0821234567")))
    root = parse(client.post("/xml", content=doc("balanceRequest", "")))
    assert root.get("account") == "acme" and Decimal(root.get("balance", "")) == Decimal("9.75")


def test_status_by_client_ref_answers_the_accounts_message_and_not_anothers(
    client: httpx.Client, hub: HubThread
) -> None:
    sent = parse(client.post("/xml", content=doc(
        "submitRequest", message("0821234567", extra="<clientRef>order-7</clientRef>"))))
    other = hub.account("other")
    httpx.post(f"{hub.url}/xml", headers={"Authorization": f"Bearer {other}"},
               content=doc("submitRequest",
                           message("0821234567", extra="<clientRef>theirs</clientRef>")))
    body = (f"<clientRef>order-7</clientRef><id>{sent[0].get('id')}</id>"
            "<clientRef>theirs</clientRef><clientRef>never</clientRef>")
    root = parse(client.post("/xml", content=doc("statusRequest", body)))
    assert [etree.QName(e).localname for e in root] == ["message", "message", "notFound",
                                                        "notFound"]
    assert root[0].get("id") == sent[0].get("id") and root[0].get("clientRef") == "order-7"
    assert [e.get("clientRef") for e in root[2:]] == ["theirs", "never"]


def test_replies_request_answers_an_empty_list_before_any_reply(client: httpx.Client) -> None:
    root = parse(client.post("/xml", content=doc("repliesRequest", "")))
    assert root.tag == f"{{{NS}}}repliesResponse" and len(root) == 0


def inject(hub: HubThread, *texts: str, sender: str = "+27821234567") -> None:
    """A handset answers through the simulator carrier, committed before this returns."""
    carrier = SimulatorCarrier(SimulatorRules())
    assert hub.hub.services is not None
    hub.run(carrier.start(hub.hub.services.dispatcher))
    for body in texts:
        hub.run(carrier.inject_inbound(sender, "31337", body))


def test_replies_list_inbound_messages_with_opt_outs_marked_and_since_honoured(
    client: httpx.Client, hub: HubThread
) -> None:
    sent = parse(client.post("/xml", content=doc("submitRequest", message("0821234567"))))
    inject(hub, "Yes please", "STOP")
    schema = etree.XMLSchema(etree.parse("schemas/smshub-1.xsd"))
    root = parse(client.post("/xml", content=doc("repliesRequest", "")))
    assert schema.validate(root), schema.error_log
    assert [(r.text, r.get("kind")) for r in root] == [("Yes please", "reply"),
                                                       ("STOP", "opt_out")]
    assert root[0].get("from") == "+27821234567" and root[0].get("to") == "31337"
    assert root[0].get("inReplyTo") == sent[0].get("id") and root.get("more") is None
    later = "<since>2999-01-01T00:00:00Z</since>"
    assert len(parse(client.post("/xml", content=doc("repliesRequest", later)))) == 0


def test_replies_answer_says_more_when_cut_at_the_limit(make_hub: MakeHub) -> None:
    hub = make_hub(xml={"max_messages": 2})
    key = hub.account("acme")
    auth = {"Authorization": f"Bearer {key}"}
    httpx.post(f"{hub.url}/xml", headers=auth, content=doc("submitRequest", message("0821234567")))
    inject(hub, "one", "two", "three")
    root = parse(httpx.post(f"{hub.url}/xml", headers=auth, content=doc("repliesRequest", "")))
    assert [r.text for r in root] == ["one", "two"] and root.get("more") == "true"


def test_replies_of_another_account_are_not_listed(client: httpx.Client, hub: HubThread) -> None:
    other = hub.account("other")
    httpx.post(f"{hub.url}/xml", headers={"Authorization": f"Bearer {other}"},
               content=doc("submitRequest", message("0821234567")))
    inject(hub, "for the other account")
    assert len(parse(client.post("/xml", content=doc("repliesRequest", "")))) == 0


def test_basic_auth_and_credentials_in_the_document_both_work(
    hub: HubThread, key: str
) -> None:
    hub.spool.set_password_hash("acme", hash_password("pw"))
    basic = httpx.post(f"{hub.url}/xml", auth=("acme", "pw"), content=doc("balanceRequest", ""))
    assert basic.status_code == 200, basic.text
    inside = doc("balanceRequest", "<credentials><account>acme</account>"
                 "<password>pw</password></credentials>")
    assert httpx.post(f"{hub.url}/xml", content=inside).status_code == 200
    by_key = doc("balanceRequest", f"<credentials><apiKey>{key}</apiKey></credentials>")
    assert httpx.post(f"{hub.url}/xml", content=by_key).status_code == 200


def test_missing_or_wrong_credentials_get_401_as_an_xml_error(hub: HubThread, key: str) -> None:
    none = httpx.post(f"{hub.url}/xml", content=doc("balanceRequest", ""))
    wrong = httpx.post(f"{hub.url}/xml", auth=("acme", "nope"), content=doc("balanceRequest", ""))
    for r in (none, wrong):
        assert r.status_code == 401 and parse(r).get("code") == "unauthorized"


def test_invalid_document_lists_every_violation_with_line_and_path(
    client: httpx.Client,
) -> None:
    body = doc("submitRequest", "\n" + message("1", extra="<priority>12</priority>")
               + "\n<message><to>1</to></message>")
    r = client.post("/xml", content=body)
    assert r.status_code == 400
    root = parse(r)
    assert root.get("code") == "invalid_document"
    violations = root.findall("s:violation", N)
    assert [(v.get("line"), v.get("path")) for v in violations] == [
        ("2", "/submitRequest/message[1]/priority"), ("3", "/submitRequest/message[2]")]
    assert "9" in (violations[0].text or "") and "text" in (violations[1].text or "")


def test_a_response_document_posted_as_a_request_is_refused(client: httpx.Client) -> None:
    r = client.post("/xml", content=doc("repliesResponse", ""))
    assert r.status_code == 400 and parse(r).get("code") == "unknown_operation"


def test_ten_thousand_messages_are_accepted_in_one_document(
    client: httpx.Client, hub: HubThread
) -> None:
    hub.spool.add_credits("acme", Decimal("5000"))
    body = doc("submitRequest", "".join(message(f"08212{i:05d}") for i in range(10_000)))
    r = client.post("/xml", content=body)
    assert r.status_code == 200, r.text[:500]
    root = parse(r)
    assert root.get("accepted") == "10000" and len(root) == 10_000


def test_one_message_over_the_limit_gets_413_naming_the_limit(make_hub: MakeHub) -> None:
    hub = make_hub(xml={"max_messages": 3})
    key = hub.account()
    r = httpx.post(f"{hub.url}/xml", headers={"Authorization": f"Bearer {key}"},
                   content=doc("submitRequest", message("1", "2") + message("3", "4")))
    assert r.status_code == 413
    assert parse(r).get("code") == "too_many_messages" and "limit is 3" in r.text


def test_xml_accepts_a_body_larger_than_the_json_limit_but_not_its_own(
    make_hub: MakeHub,
) -> None:
    hub = make_hub(http={"max_body_bytes": 2048}, xml={"max_body_bytes": 8192})
    key = hub.account()
    headers = {"Authorization": f"Bearer {key}"}
    fits = doc("submitRequest", message("0821234567", text="a" * 4000))
    big = httpx.post(f"{hub.url}/xml", headers=headers, content=fits)
    assert big.status_code == 422 and parse(big)[0].get("code") == "too_long"  # read, not 413
    over = httpx.post(f"{hub.url}/xml", headers=headers, content=b"<x/>" + b" " * 9000)
    assert over.status_code == 413 and parse(over).get("code") == "body_too_large"
    assert "8192" in over.text
    json_over = httpx.post(f"{hub.url}/v1/messages", headers=headers, content=b"x" * 4000)
    assert json_over.status_code == 413 and json_over.json()["code"] == "body_too_large"
