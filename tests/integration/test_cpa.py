"""CPA regulation 4 through the protocols (issue #15), on a real server with real
clients: a marketing message due outside the hours is held, and every status answer
(REST GET /v1/messages/{id}, the XML statusRequest) says why and until when; /v1/consents
records the consent that lets a number's messages go at other times."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from lxml import etree

from hub import cpa
from tests.hubthread import HubThread

NS = "urn:smshub:xml:1"


def sunday_morning() -> datetime:
    """10:00 on the next Sunday but one in the hub's zone: always ahead, always held
    (whatever day the suite runs)."""
    today = datetime.now(cpa.ZONE).replace(hour=10, minute=0, second=0, microsecond=0)
    return today + timedelta(days=(6 - today.weekday()) % 7 + 7)


@pytest.fixture
def hub(make_hub: Callable[..., HubThread]) -> HubThread:
    return make_hub()


@pytest.fixture
def api(hub: HubThread) -> Iterator[httpx.Client]:
    key = hub.account("acme")
    with httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {key}"},
                      timeout=30) as client:
        yield client


def send(api: httpx.Client, at: datetime, message_class: str = "marketing") -> str:
    r = api.post("/v1/messages", json={"to": "0821234567", "text": "Sale!",
                                       "class": message_class, "send_at": at.isoformat()})
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "scheduled"
    return str(r.json()["id"])


def test_rest_status_shows_the_reason_and_the_next_allowed_moment(api: httpx.Client) -> None:
    sunday = sunday_morning()
    shown = api.get(f"/v1/messages/{send(api, sunday)}").json()
    opens = cpa.next_allowed(sunday)
    assert shown["status"] == "scheduled" and shown["state"] == "pending"
    assert shown["held"]["code"] == "cpa_hours"
    assert datetime.fromisoformat(shown["held"]["until"]) == opens
    assert "no direct marketing on a Sunday" in shown["held"]["reason"]
    assert "held: no direct marketing" in shown["events"][0]["detail"]
    plain = api.get(f"/v1/messages/{send(api, sunday, 'transactional')}").json()
    assert plain["held"] is None and plain["error"] is None


def test_xml_status_answer_says_held_until_and_why(hub: HubThread, api: httpx.Client) -> None:
    ident = send(api, sunday_morning())
    body = (f'<?xml version="1.0" encoding="UTF-8"?><statusRequest xmlns="{NS}">'
            f"<id>{ident}</id></statusRequest>").encode()
    root = etree.fromstring(api.post("/xml", content=body).content)
    schema = etree.XMLSchema(etree.parse("schemas/smshub-1.xsd"))
    assert schema.validate(root), schema.error_log
    [message] = root
    assert message.get("status") == "scheduled"
    assert datetime.fromisoformat(message.get("heldUntil", "")) == cpa.next_allowed(
        sunday_morning())
    [error] = message
    assert error.get("code") == "cpa_hours" and "on a Sunday" in (error.text or "")


def test_consents_over_rest_let_that_number_go_at_other_times(api: httpx.Client) -> None:
    added = api.post("/v1/consents", json={"number": "082 123 4567", "note": "form 4"})
    assert added.status_code == 201 and added.json()["number"] == "+27821234567"
    assert api.post("/v1/consents", json={"number": "0821234567"}).status_code == 200
    assert api.post("/v1/consents", json={"number": "12"}).status_code == 422
    assert api.post("/v1/consents", json={"number": "0821234567", "x": 1}).status_code == 422
    listed = api.get("/v1/consents").json()
    assert [(c["number"], c["note"]) for c in listed["consents"]] == [("+27821234567", "form 4")]
    sunday = sunday_morning()
    shown = api.get(f"/v1/messages/{send(api, sunday)}").json()
    assert shown["held"] is None
    assert datetime.fromisoformat(shown["send_at"]) == sunday
    assert api.delete("/v1/consents/0821234567").status_code == 204
    assert api.delete("/v1/consents/0821234567").status_code == 404
    assert api.get(f"/v1/messages/{send(api, sunday)}").json()["held"] is not None


def test_a_consent_over_rest_releases_the_numbers_held_messages(api: httpx.Client) -> None:
    sunday = sunday_morning()
    held = send(api, sunday)
    assert api.get(f"/v1/messages/{held}").json()["held"] is not None
    added = api.post("/v1/consents", json={"number": "0821234567", "note": "form 4"})
    assert added.status_code == 201 and added.json()["released"] == 1
    shown = api.get(f"/v1/messages/{held}").json()
    # Due again when its sender wanted it (this Sunday), no longer at Monday's opening.
    assert shown["held"] is None and shown["error"] is None
    assert shown["status"] == "scheduled"
    assert shown["events"][-1]["status"] == "scheduled"
    assert "released" in shown["events"][-1]["detail"]
    assert api.post("/v1/consents", json={"number": "0821234567"}).json()["released"] == 0
