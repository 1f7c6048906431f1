"""Replies through the native XML API when several accounts text one handset: each
account lists only the replies to the numbers it sent from (issue #17)."""

from __future__ import annotations

import httpx

from adapters.carriers.simulator import SimulatorCarrier, SimulatorRules
from tests.integration.test_xml_api import MakeHub, doc, message, parse

NUMBERS = {"a": "+27830000001", "b": "+27830000002"}


def test_replies_request_lists_only_replies_to_the_numbers_the_account_sent_from(
    make_hub: MakeHub,
) -> None:
    hub = make_hub()
    auth = {name: {"Authorization": f"Bearer {hub.account(name, sender_ids=(n, '31337'))}"}
            for name, n in NUMBERS.items()}
    for name, number in NUMBERS.items():
        for sender in (number, "31337"):
            body = doc("submitRequest", message("0821234567", extra=f"<from>{sender}</from>"))
            httpx.post(f"{hub.url}/xml", headers=auth[name], content=body).raise_for_status()
    carrier = SimulatorCarrier(SimulatorRules())
    assert hub.hub.services is not None
    hub.run(carrier.start(hub.hub.services.dispatcher))
    for to, text in (("27830000001", "to a"), ("27830000002", "to b"),
                     ("31337", "to both")):  # both sent from 31337: it is nobody's
        hub.run(carrier.inject_inbound("+27821234567", to, text))
    for name in NUMBERS:
        answer = httpx.post(f"{hub.url}/xml", headers=auth[name],
                            content=doc("repliesRequest", ""))
        assert [r.text for r in parse(answer)] == [f"to {name}"]
