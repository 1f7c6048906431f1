"""A marketing message held by CPA regulation 4 shows why and until when in every status
answer besides REST and native XML (test_cpa.py): Clickatell's HTTP `querymsg` and
`getmsgcharge` (status 011 and a Description) read by the PyPI client, its XML
`queryMsg`, WinSMS's `XMLGetStatus.asp`, the FTP drop's report file fetched with ftplib,
and the portal's message page; a message not held keeps its answer as it was."""

from __future__ import annotations

import csv
import ftplib
import io
import re
from collections.abc import Callable, Iterator
from datetime import datetime

import httpx
import pytest
from clickatell.http import Http
from lxml import etree

from hub import cpa
from hub.accounts import hash_password
from tests.ftpdrop import FTP_DEFAULTS, PASSWORD, Drop, stem
from tests.hubthread import HubThread
from tests.integration.test_cpa import sunday_morning
from tests.polling import eventually
from tests.portal import sign_in

MakeHub = Callable[..., HubThread]
AUTH = f"<api_id>3388480</api_id><user>acme</user><password>{PASSWORD}</password>"


@pytest.fixture
def hub(make_hub: MakeHub) -> HubThread:
    return make_hub(ftp=FTP_DEFAULTS)


@pytest.fixture
def api(hub: HubThread) -> Iterator[httpx.Client]:
    key = hub.account("acme", credits="100", price="0.25")
    hub.spool.set_password_hash("acme", hash_password(PASSWORD))
    with httpx.Client(
        base_url=hub.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as client:
        yield client


def send(api: httpx.Client, message_class: str = "marketing") -> str:
    r = api.post(
        "/v1/messages",
        json={
            "to": "0821234567",
            "text": "Sale!",
            "class": message_class,
            "send_at": sunday_morning().isoformat(),
        },
    )
    assert r.status_code == 202 and r.json()["status"] == "scheduled", r.text
    return str(r.json()["id"])


def opens() -> datetime:
    return cpa.next_allowed(sunday_morning())


def test_clickatell_http_answers_011_with_the_reason_and_the_moment(
    hub: HubThread, api: httpx.Client
) -> None:
    held, plain = send(api), send(api, "transactional")
    client = Http("acme", PASSWORD, 3388480)
    client.endpoint = hub.url.removeprefix("http://")
    queried = client.queryMessage(held)  # the client's own getmsgcharge reading
    assert queried["status"] == "011" and "later time" in queried["description"]
    # The client's parser takes the line's keys apart: the Description is one value.
    line = client.parseLegacy(client.request("http/querymsg", {"apimsgid": held}))
    assert line["Status"] == "011" and set(line) == {"ID", "Status", "Description"}
    assert "no direct marketing on a Sunday" in line["Description"]
    assert f"next allowed moment {cpa.local_text(opens())}" in line["Description"]
    charge = client.parseLegacy(client.request("http/getmsgcharge", {"apimsgid": held}))
    assert charge["status"] == "011" and charge["description"] == line["Description"]
    # A message scheduled by its sender is 011 too, its line as Clickatell writes it.
    assert re.fullmatch(
        rf"ID: {plain} Status: 011",
        httpx.get(
            f"{hub.url}/http/querymsg",
            params={"user": "acme", "password": PASSWORD, "apimsgid": plain},
        ).text,
    )


def test_clickatell_xml_query_msg_has_a_description(hub: HubThread, api: httpx.Client) -> None:
    held, plain = send(api), send(api, "transactional")
    doc = (
        f"<clickAPI><queryMsg>{AUTH}<apiMsgId>{held}</apiMsgId></queryMsg>"
        f"<queryMsg>{AUTH}<apiMsgId>{plain}</apiMsgId></queryMsg></clickAPI>"
    )
    root = etree.fromstring(httpx.post(f"{hub.url}/xml/xml", data={"data": doc}).content)
    first, second = ({child.tag: child.text or "" for child in node} for node in root)
    assert first["status"] == "011" and "on a Sunday" in first["description"]
    assert cpa.local_text(opens()) in first["description"]
    assert second == {"apiMsgId": plain, "status": "011"}


def test_winsms_status_gives_the_reason_and_the_moment_in_its_time_format(
    hub: HubThread, api: httpx.Client
) -> None:
    held, plain = send(api), send(api, "transactional")
    body = (
        "<WinSMS_StatusRequest><User>acme</User>"
        f"<Password>{PASSWORD}</Password><MessageIDs>"
        f"<MessageID><ID>{held}</ID></MessageID><MessageID><ID>{plain}</ID></MessageID>"
        "</MessageIDs></WinSMS_StatusRequest>"
    ).encode()
    answer = httpx.post(
        f"{hub.url}/api/XMLGetStatus.asp", content=body, headers={"Content-Type": "application/xml"}
    )
    first, second = etree.fromstring(answer.content)
    assert first.findtext("Status") == "SCHEDULED"
    assert "no direct marketing on a Sunday" in (first.findtext("Description") or "")
    local = opens().astimezone(cpa.ZONE)
    assert first.findtext("Scheduled") == local.strftime("%Y%m%d%H%M")
    assert second.findtext("Status") == "SCHEDULED" and second.find("Description") is None


def test_ftp_report_file_shows_the_hold_of_each_held_row(hub: HubThread, api: httpx.Client) -> None:
    drop = Drop(hub)
    sunday = sunday_morning().isoformat()
    drop.upload(
        "promo.csv",
        f"to,text,send_at,class\n0821234567,Sale!,{sunday},marketing\n"
        f"0821234568,Receipt,{sunday},transactional\n",
    )

    def fetched() -> list[list[str]] | None:
        out = io.BytesIO()
        ftp = drop.client()
        try:
            ftp.retrbinary(f"RETR reports/{stem('promo.csv')}.report.csv", out.write)
        except ftplib.error_perm:
            return None
        finally:
            ftp.quit()
        return list(csv.reader(io.StringIO(out.getvalue().decode("utf-8-sig"))))

    def complete() -> list[list[str]] | None:
        found = fetched()
        return found if found is not None and len(found) == 4 else None  # header, 2, summary

    rows = {r[1]: r for r in eventually(complete, what="the report with both rows")[1:-1]}
    held, plain = rows["'+27821234567"], rows["'+27821234568"]
    assert held[3] == "scheduled" and held[7].startswith("cpa_hours: held: no direct")
    assert f"next allowed moment {cpa.local_text(opens())}" in held[7]
    assert plain[3] == "scheduled" and plain[7] == ""


def test_portal_message_page_shows_the_hold(hub: HubThread, api: httpx.Client) -> None:
    opened: list[httpx.Client] = []
    try:
        page = sign_in(hub, opened, "acme", PASSWORD).get(f"/messages/{send(api)}")
        held = re.search(r'<dd id="held">([^<]*)</dd>', page.text)
        assert held is not None, page.text[:2000]
        assert "no direct marketing on a Sunday" in held.group(1)
        assert cpa.local_text(opens()) in held.group(1)
    finally:
        for client in opened:
            client.close()


def test_rest_list_shows_the_hold_of_each_held_message(api: httpx.Client) -> None:
    held, plain = send(api), send(api, "transactional")
    listed = {
        m["id"]: m
        for m in api.get("/v1/messages", params={"status": "scheduled"}).json()["messages"]
    }
    assert listed[held]["held"]["code"] == "cpa_hours"
    assert datetime.fromisoformat(listed[held]["held"]["until"]) == opens()
    assert listed[plain]["held"] is None
