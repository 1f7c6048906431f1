"""Clickatell's XML API (`/xml/xml`, `data=<clickAPI>…`) on a real server: existing
clients change only the host name."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from lxml import etree

from hub.accounts import hash_password
from tests.hubthread import HubThread
from tests.polling import eventually

MakeHub = Callable[..., HubThread]
AUTH = "<api_id>3388480</api_id><user>acme</user><password>secret</password>"


@pytest.fixture
def hub(make_hub: MakeHub) -> HubThread:
    hub = make_hub()
    hub.account("acme", credits="10", price="0.25", sender_ids=("ACME",))
    hub.spool.set_password_hash("acme", hash_password("secret"))
    return hub


def click(hub: HubThread, *commands: str, method: str = "POST") -> etree._Element:
    data = "<clickAPI>" + "".join(commands) + "</clickAPI>"
    if method == "GET":
        r = httpx.get(f"{hub.url}/xml/xml", params={"data": data})
    else:
        r = httpx.post(f"{hub.url}/xml/xml", data={"data": data})
    assert r.status_code == 200, r.text
    root = etree.fromstring(r.content)
    assert root.tag == "clickAPI"
    return root


def fields(node: etree._Element) -> dict[str, str]:
    """What Clickatell client libraries read: the children of one *Resp, flattened."""
    return {child.tag: child.text or "" for child in node}


def test_send_msg_answers_an_api_msg_id_and_stores_the_message(hub: HubThread) -> None:
    root = click(hub, f"<sendMsg>{AUTH}<to>27821234567</to><from>ACME</from>"
                      "<text>Hello &amp; welcome</text><climsgid>inv-1</climsgid></sendMsg>")
    answer = fields(root[0])
    assert root[0].tag == "sendMsgResp" and set(answer) == {"apiMsgId"}
    stored = hub.spool.get_message(answer["apiMsgId"])
    assert stored is not None and stored.text == "Hello & welcome"
    assert (stored.recipient, stored.sender, stored.client_ref) == ("+27821234567", "ACME",
                                                                    "inv-1")
    assert hub.spool.get_account("acme").balance == Decimal("9.75")


def test_several_recipients_are_answered_each_with_to_and_a_fault_for_a_bad_one(
    hub: HubThread,
) -> None:
    root = click(hub, f"<sendMsg>{AUTH}<to>27821234567,12</to><to>27821234568</to>"
                      "<text>Hi</text><sequence_no>7</sequence_no></sendMsg>")
    answers = [fields(r) for r in root]
    assert [a.get("to") for a in answers] == ["27821234567", "12", "27821234568"]
    assert answers[1]["fault"] == "105, Invalid destination address"
    assert "apiMsgId" in answers[0] and "apiMsgId" in answers[2]
    assert all(a["sequence_no"] == "7" for a in answers)


def test_to_is_international_without_its_plus_foreign_numbers_too(hub: HubThread) -> None:
    root = click(hub, f"<sendMsg>{AUTH}<to>447911123456</to><text>Abroad</text></sendMsg>")
    stored = hub.spool.get_message(fields(root[0])["apiMsgId"])
    assert stored is not None and stored.recipient == "+447911123456"


def test_get_request_with_data_in_the_query_works_too(hub: HubThread) -> None:
    root = click(hub, f"<getBalance>{AUTH}</getBalance>", method="GET")
    assert root[0].tag == "getBalanceResp" and Decimal(fields(root[0])["ok"]) == 10


@pytest.mark.parametrize(("extra", "fault"), [
    ("<to>27821234567</to><text>Hi</text><from>NOPE</from>", "123, Invalid sender ID"),
    ("<to>27821234567</to><text></text>", "107, Empty message"),
    ("<to>27821234567</to><text>zz</text><unicode>1</unicode>", "116, Invalid Unicode data"),
    ("<to>27821234567</to><text>Hi</text><deliv_time>soon</deliv_time>",
     "120, Invalid delivery time"),
    ("<to>27821234567</to><text>" + "x" * 200 + "</text><concat>1</concat>",
     "113, Maximum message parts exceeded"),
    ("<text>Hi</text>", "101, Invalid or missing parameters"),
])
def test_refusals_are_faults_with_clickatells_codes(hub: HubThread, extra: str,
                                                     fault: str) -> None:
    root = click(hub, f"<sendMsg>{AUTH}{extra}</sendMsg>")
    assert fields(root[0])["fault"] == fault


def test_no_credit_is_fault_301(hub: HubThread) -> None:
    numbers = "".join(f"<to>2782123{i:04d}</to>" for i in range(41))
    root = click(hub, f"<sendMsg>{AUTH}{numbers}<text>Hi</text></sendMsg>")
    assert fields(root[-1])["fault"] == "301, No credit left"


def test_wrong_password_is_fault_001_per_command(hub: HubThread) -> None:
    bad = AUTH.replace("secret", "guess")
    root = click(hub, f"<getBalance>{bad}</getBalance>", f"<getBalance>{AUTH}</getBalance>")
    assert fields(root[0]) == {"fault": "001, Authentication failed"}
    assert "ok" in fields(root[1])


def test_unicode_text_is_hex_ucs2(hub: HubThread) -> None:
    hexed = "Привет".encode("utf-16-be").hex()
    root = click(hub, f"<sendMsg>{AUTH}<to>27821234567</to><text>{hexed}</text>"
                      "<unicode>1</unicode></sendMsg>")
    stored = hub.spool.get_message(fields(root[0])["apiMsgId"])
    assert stored is not None and stored.text == "Привет" and stored.encoding.value == "ucs2"


def test_deliv_time_schedules_the_message_minutes_ahead(hub: HubThread) -> None:
    root = click(hub, f"<sendMsg>{AUTH}<to>27821234567</to><text>Later</text>"
                      "<deliv_time>60</deliv_time></sendMsg>")
    api_id = fields(root[0])["apiMsgId"]
    answer = fields(click(hub, f"<queryMsg>{AUTH}<apiMsgId>{api_id}</apiMsgId></queryMsg>")[0])
    assert answer == {"apiMsgId": api_id, "status": "011"}


def test_query_by_cli_msg_id_maps_our_status_to_clickatells_code(hub: HubThread) -> None:
    root = click(hub, f"<sendMsg>{AUTH}<to>27821234567</to><text>Hi</text>"
                      "<climsgid>ref-9</climsgid></sendMsg>")
    api_id = fields(root[0])["apiMsgId"]
    query = f"<queryMsg>{AUTH}<climsgid>ref-9</climsgid></queryMsg>"
    answer = fields(click(hub, query)[0])
    assert answer["apiMsgId"] == api_id and answer["cliMsgId"] == "ref-9"
    assert answer["status"] in {"002", "003", "004"}  # queued, at the gateway, or delivered


def test_query_of_an_unknown_or_another_accounts_message_is_a_fault(hub: HubThread) -> None:
    other = hub.account("other")
    theirs = fields(click(hub, f"<sendMsg><password>{other}</password><to>27821234567</to>"
                               "<text>Hi</text></sendMsg>")[0])["apiMsgId"]
    root = click(hub, f"<queryMsg>{AUTH}<apiMsgId>{theirs}</apiMsgId></queryMsg>",
                 f"<queryMsg>{AUTH}<cliMsgId>nope</cliMsgId></queryMsg>",
                 f"<queryMsg>{AUTH}</queryMsg>")
    assert [fields(r)["fault"][:3] for r in root] == ["103", "104", "109"]


def test_get_msg_charge_answers_status_and_charge(hub: HubThread) -> None:
    api_id = fields(click(hub, f"<sendMsg>{AUTH}<to>27821234567</to><text>Hi</text>"
                               "</sendMsg>")[0])["apiMsgId"]
    assert hub.spool.get_message(api_id) is not None
    answer = fields(click(hub, f"<getMsgCharge>{AUTH}<apiMsgId>{api_id}</apiMsgId>"
                               "</getMsgCharge>")[0])
    assert answer["charge"] == "0.25" and answer["status"] in {"002", "003", "004"}


def test_final_statuses_map_to_clickatell_codes(hub: HubThread) -> None:
    api_id = fields(click(hub, f"<sendMsg>{AUTH}<to>27821234567</to><text>Hi</text>"
                               "<deliv_time>600</deliv_time></sendMsg>")[0])["apiMsgId"]
    stored = hub.spool.get_message(api_id)
    assert stored is not None and stored.expires_at is not None
    hub.spool.expire_due(stored.expires_at + timedelta(seconds=1))
    answer = fields(click(hub, f"<queryMsg>{AUTH}<apiMsgId>{api_id}</apiMsgId></queryMsg>")[0])
    assert answer["status"] == "010"  # Message expired


def test_auth_session_id_works_until_it_is_unknown(hub: HubThread) -> None:
    session = fields(click(hub, f"<auth>{AUTH}</auth>")[0])["session_id"]
    assert len(session) == 32 and int(session, 16) >= 0
    root = click(hub, f"<ping><session_id>{session}</session_id></ping>",
                 f"<sendMsg><session_id>{session}</session_id><to>27821234567</to>"
                 "<text>Hi</text></sendMsg>",
                 "<getBalance><session_id>0123456789abcdef0123456789abcdef</session_id>"
                 "</getBalance>")
    assert root[0].tag == "pingResp" and "fault" not in fields(root[0])
    assert "apiMsgId" in fields(root[1])
    assert fields(root[2]) == {"fault": "003, Session ID expired"}


def test_unserved_command_is_fault_101(hub: HubThread) -> None:
    root = click(hub, f"<delMsg>{AUTH}<apiMsgId>x</apiMsgId></delMsg>")
    assert root[0].tag == "delMsgResp" and fields(root[0])["fault"][:3] == "101"


def test_doctype_and_garbage_are_refused_as_a_whole(hub: HubThread) -> None:
    evil = ('<!DOCTYPE x [<!ENTITY p SYSTEM "file:///etc/passwd">]>'
            f"<clickAPI><sendMsg>{AUTH}<to>27821234567</to><text>&p;</text></sendMsg></clickAPI>")
    for data in (evil, "<clickAPI><sendMsg>", "<other/>"):
        r = httpx.post(f"{hub.url}/xml/xml", data={"data": data})
        assert r.status_code == 400 and b"root:" not in r.content
        assert etree.fromstring(r.content).findtext("xmlErrorResp/fault", "").startswith("101")
    assert httpx.post(f"{hub.url}/xml/xml").status_code == 400


def test_a_delivered_message_queries_as_004(hub: HubThread) -> None:
    api_id = fields(click(hub, f"<sendMsg>{AUTH}<to>27821234567</to><text>Hi</text>"
                               "</sendMsg>")[0])["apiMsgId"]
    query = f"<queryMsg>{AUTH}<apiMsgId>{api_id}</apiMsgId></queryMsg>"
    # The simulator reports delivery after report_delay.
    eventually(lambda: fields(click(hub, query)[0])["status"] == "004", 10, 0.05,
               "status 004 (delivered)")


def test_a_body_over_the_xml_limit_is_refused_as_a_clickatell_error(make_hub: MakeHub) -> None:
    hub = make_hub(xml={"max_body_bytes": 2000})
    numbers = "".join(f"<to>2782123{i:04d}</to>" for i in range(100))
    r = httpx.post(f"{hub.url}/xml/xml",
                   data={"data": f"<clickAPI><sendMsg>{AUTH}{numbers}</sendMsg></clickAPI>"})
    assert r.status_code == 413
    assert etree.fromstring(r.content).findtext("xmlErrorResp/fault", "").startswith("101")
