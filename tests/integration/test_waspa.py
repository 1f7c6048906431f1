"""WASPA's opt-out instruction end to end (issue #15): a marketing message that does not
say how to opt out gets the configured instruction appended, counted in the segments and
credits every protocol answers with, or is refused with `no_opt_out` per account; the
setting through `smshub account set --marketing-optout`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from lxml import etree

from tests.clirun import hub_cli
from tests.ftpdrop import Drop, make_drop, no_leaked_threads
from tests.hubthread import HubThread

NS = "urn:smshub:xml:1"
LONG = "Winter sale: 20% off every jacket and boot until Sunday at all our stores. " * 2
_ = no_leaked_threads  # the FTP test's fixture


@pytest.fixture
def hub(make_hub: Callable[..., HubThread]) -> HubThread:
    return make_hub(messages={"marketing_optout_text": " SMS STOP to 31337"})


def api(hub: HubThread) -> httpx.Client:
    return httpx.Client(base_url=hub.url, timeout=30,
                        headers={"Authorization": f"Bearer {hub.account('acme')}"})


def xml_submit(client: httpx.Client, text: str) -> etree._Element:
    body = (f'<?xml version="1.0" encoding="UTF-8"?><submitRequest xmlns="{NS}"><message>'
            f"<to>0821234567</to><text>{text}</text><class>marketing</class>"
            "</message></submitRequest>").encode()
    return etree.fromstring(client.post("/xml", content=body).content)[0]


def test_rest_appends_the_instruction_and_charges_the_segments_it_adds(hub: HubThread) -> None:
    assert len(LONG) <= 160 < len(LONG + " SMS STOP to 31337")
    with api(hub) as client:
        answer = client.post("/v1/messages", json={"to": "0821234567", "text": LONG,
                                                   "class": "marketing"}).json()
        plain = client.post("/v1/messages", json={"to": "0821234567", "text": LONG}).json()
        worded = client.post("/v1/messages", json={
            "to": "0821234567", "text": "Sale! Reply STOP to opt out", "class": "marketing"})
    assert (answer["segments"], Decimal(answer["cost"])) == (2, Decimal("0.50"))
    stored = hub.spool.get_message(answer["id"])
    assert stored is not None and stored.text == LONG + " SMS STOP to 31337"
    assert plain["segments"] == 1  # transactional: untouched
    kept = hub.spool.get_message(worded.json()["id"])
    assert kept is not None and kept.text == "Sale! Reply STOP to opt out"
    assert hub.spool.get_account("acme").balance == Decimal("100") - Decimal("1.00")


def test_xml_reports_the_same_segments_and_cost(hub: HubThread) -> None:
    with api(hub) as client:
        result = xml_submit(client, LONG)
    assert etree.QName(result).localname == "accepted"
    assert (result.get("segments"), Decimal(result.get("cost", ""))) == ("2", Decimal("0.50"))


def test_an_account_set_to_refuse_gets_no_opt_out_in_rest_and_xml(
        hub: HubThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    key = hub.account("acme")
    (tmp_path / "cli").mkdir()
    run = hub_cli(tmp_path / "cli", monkeypatch, capsys,
                  f'[hub]\ndata_dir = "{hub.config.data_dir}"\n')
    code, out, _ = run("account", "set", "acme", "--marketing-optout", "refuse", "--json")
    assert code == 0 and out["marketing_optout"] == "refuse"
    with httpx.Client(base_url=hub.url, timeout=30,
                      headers={"Authorization": f"Bearer {key}"}) as client:
        refused = client.post("/v1/messages", json={"to": "0821234567", "text": "Sale!",
                                                    "class": "marketing"})
        assert refused.status_code == 422 and refused.json()["code"] == "no_opt_out"
        result = xml_submit(client, "Sale!")
        assert (etree.QName(result).localname, result.get("code")) == ("rejected", "no_opt_out")
        assert client.post("/v1/messages", json={
            "to": "0821234567", "text": "Sale! Reply STOP to opt out",
            "class": "marketing"}).status_code == 202
    assert hub.spool.get_account("acme").balance == Decimal("99.75")


@pytest.fixture
def drop(no_leaked_threads: None, make_hub: Callable[..., HubThread]) -> Iterator[Drop]:
    yield make_drop(make_hub)


def test_ftp_rows_get_the_default_instruction_in_their_segments(drop: Drop) -> None:
    drop.upload("promo.csv", f"to,text,class\n0821234567,{LONG},marketing\n")
    rows = drop.result("promo.csv")
    assert rows[1][3] == "accepted"
    header = rows[0]
    assert rows[1][header.index("segments")] == "2"
