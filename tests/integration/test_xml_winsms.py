"""WinSMS's XML API on a real server: existing clients change only the host name."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest
from lxml import etree

from adapters.carriers.simulator import SimulatorCarrier, SimulatorRules
from hub.accounts import hash_password
from tests.factories import sa_minute_ahead
from tests.hubthread import HubThread

MakeHub = Callable[..., HubThread]


@pytest.fixture
def hub(make_hub: MakeHub) -> HubThread:
    hub = make_hub()
    hub.account("hpotter", credits="10", price="0.25")
    hub.spool.set_password_hash("hpotter", hash_password("w1Zard"))
    return hub


def multi(numbers: list[str], text: str = "What%20does%20it%20mean%3F", schedule: str = "",
          password: str = "w1Zard") -> bytes:
    nums = "".join(f"<Number>{n}</Number>" for n in numbers)
    return (f"<WinSMS_Multi_Message><User>hpotter</User><Password>{password}</Password>"
            f"{schedule}<Messages><Message><MessageText>{text}</MessageText>"
            f"<Numbers>{nums}</Numbers></Message></Messages></WinSMS_Multi_Message>").encode()


def post(hub: HubThread, page: str, body: bytes) -> etree._Element:
    r = httpx.post(f"{hub.url}/api/{page}", content=body,
                   headers={"Content-Type": "application/xml"})
    assert r.status_code == 200, r.text
    return etree.fromstring(r.content)


def test_multi_message_is_accepted_per_number_with_url_decoded_text(hub: HubThread) -> None:
    root = post(hub, "xmlsendsmsmulti.asp", multi(["27825550101", "0835550505", "12"]))
    answers = [(m.findtext("Number"), m.findtext("MessageID") is not None, m.findtext("Error"))
               for m in root.iter("Message")]
    assert answers == [("27825550101", True, None), ("0835550505", True, None),
                       ("12", False, "BADDEST")]
    stored = hub.spool.get_message(root.findtext("Message/MessageID") or "")
    assert stored is not None and stored.text == "What does it mean?"
    assert stored.recipient == "+27825550101" and stored.source.value == "xml"
    assert hub.spool.get_account("hpotter").balance == Decimal("9.50")


def test_numbers_are_international_without_their_plus_foreign_ones_too(
        hub: HubThread) -> None:
    root = post(hub, "xmlsendsmsmulti.asp", multi(["447911123456"]))
    stored = hub.spool.get_message(root.findtext("Message/MessageID") or "")
    assert stored is not None and stored.recipient == "+447911123456"


def test_scheduled_is_south_african_time_and_schedule_is_accepted_too(hub: HubThread) -> None:
    at = sa_minute_ahead()
    for tag in ("Scheduled", "Schedule"):
        root = post(hub, "xmlsendsmsmulti.asp",
                    multi(["27825550101"], schedule=f"<{tag}>{at:%Y%m%d%H%M}</{tag}>"))
        stored = hub.spool.get_message(root.findtext("Message/MessageID") or "")
        assert stored is not None and stored.send_at == at
        assert stored.status.value == "scheduled"


def test_bad_schedule_refuses_each_number_as_invalid(hub: HubThread) -> None:
    root = post(hub, "xmlsendsmsmulti.asp",
                multi(["27825550101"], schedule="<Scheduled>tomorrow</Scheduled>"))
    assert root.findtext("Message/Error") == "INVALID"


def test_wrong_password_answers_fail(hub: HubThread) -> None:
    root = post(hub, "xmlsendsmsmulti.asp", multi(["27825550101"], password="nope"))
    assert root.findtext("Error") == "FAIL"


def test_no_credit_answers_nocredits_per_number(hub: HubThread) -> None:
    root = post(hub, "xmlsendsmsmulti.asp", multi(["27825550101"] * 41))
    assert [m.findtext("Error") for m in root.iter("Message")][-1] == "NOCREDITS"


def test_more_than_a_thousand_numbers_are_refused(hub: HubThread) -> None:
    r = httpx.post(f"{hub.url}/api/xmlsendsmsmulti.asp", content=multi(["27825550101"] * 1001))
    assert r.status_code == 413 and etree.fromstring(r.content).findtext("Error") == "INVALID"


def test_status_request_maps_our_statuses_to_winsms_words(hub: HubThread) -> None:
    sent = post(hub, "XMLSendSMSMulti.asp", multi(["27825550101"]))
    ident = sent.findtext("Message/MessageID")
    body = (f"<WinSMS_StatusRequest><User>hpotter</User><Password>w1Zard</Password>"
            f"<MessageIDs><MessageID><ID>{ident}</ID><CLI>27825550101</CLI></MessageID>"
            f"<MessageID><ID>404</ID></MessageID></MessageIDs></WinSMS_StatusRequest>").encode()
    root = post(hub, "XMLGetStatus.asp", body)
    statuses = [(m.findtext("ID"), m.findtext("Status")) for m in root.iter("MessageID")]
    assert statuses[0][0] == ident and statuses[0][1] in {"INQUEUE", "SENT", "DELIVERED"}
    assert statuses[1] == ("404", "NOTFOUND")


REPLIES = b"<WinSMS_Replies><User>hpotter</User><Password>w1Zard</Password></WinSMS_Replies>"


def test_replies_request_answers_an_empty_list_before_any_reply(hub: HubThread) -> None:
    root = post(hub, "xmlgetreplies.asp", REPLIES)
    assert root.tag == "WinSMS_RepliesResponse" and len(root) == 0


def test_replies_list_answers_url_encoded_without_opt_outs(hub: HubThread) -> None:
    sent = post(hub, "xmlsendsmsmulti.asp", multi(["27825550101"]))
    carrier = SimulatorCarrier(SimulatorRules())
    assert hub.hub.services is not None
    hub.run(carrier.start(hub.hub.services.dispatcher))
    for text in ("Yes, 10:00 & thanks", "STOP"):
        hub.run(carrier.inject_inbound("+27825550101", "31337", text))
    root = post(hub, "XMLGetReplies.asp", REPLIES)
    replies = [(r.findtext("Number"), r.findtext("MessageText"), r.findtext("MessageID"))
               for r in root.iter("Reply")]
    assert replies == [("27825550101", "Yes%2C%2010%3A00%20%26%20thanks",
                        sent.findtext("Message/MessageID"))]
    assert len(root.findtext("Reply/Received") or "") == 12  # CCYYMMDDHHmm
    since = REPLIES.replace(b"</Password>", b"</Password><Since>209901010000</Since>")
    assert len(post(hub, "XMLGetReplies.asp", since)) == 0


def test_doctype_is_refused_on_the_dialect_paths_too(hub: HubThread) -> None:
    body = b'<!DOCTYPE x [<!ENTITY p SYSTEM "file:///etc/passwd">]>' + multi(["1"], text="&p;")
    r = httpx.post(f"{hub.url}/api/xmlsendsmsmulti.asp", content=body)
    assert r.status_code == 400 and b"root:" not in r.content
