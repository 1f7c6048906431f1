"""The same vendor document through every transport that carries it, on one real hub
(SMTP listener, FTP drop and HTTP at once): a Clickatell key:value document mailed or
uploaded gives the same SMS, and a WinSMS time schedules the same moment by mail
subject, FTP first line and XML `<Scheduled>`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from lxml import etree

from hub.accounts import hash_password
from hub.mail import MailSettings, SubjectMode
from hub.model import Message
from tests.factories import sa_minute_ahead
from tests.ftpdrop import FTP_DEFAULTS, PASSWORD, Drop, no_leaked_threads
from tests.hubthread import HubThread
from tests.integration.test_smtp_mail import (
    DOMAIN,
    SENDER,
    connect,
    mail,
    queued,
    send,
    smtp_section,
)

pytestmark = pytest.mark.usefixtures("no_leaked_threads")
_ = no_leaked_threads

CLICKATELL = f"sms@{DOMAIN}"
Sms = tuple[str, str, str | None]  # recipient, text, sender


@pytest.fixture
def make_both(make_hub: Callable[..., HubThread],
              tls_files: dict[str, str]) -> Callable[..., Drop]:
    """One hub with the FTP drop and the SMTP listener; account acme has the FTP password
    and allows ops@acme.co.za to mail."""

    def make(**mail_settings: Any) -> Drop:
        hub = make_hub(ftp=dict(FTP_DEFAULTS), smtp=smtp_section(**tls_files))
        hub.account("acme", credits="1000")
        hub.spool.set_password_hash("acme", hash_password(PASSWORD))
        account = hub.spool.get_account("acme")
        hub.spool.save_mail_settings(MailSettings(account.id, (SENDER,), **mail_settings))
        return Drop(hub)

    return make


@pytest.fixture
def both(make_both: Callable[..., Drop]) -> Drop:
    return make_both()


def _sms(messages: list[Message]) -> list[Sms]:
    return sorted((m.recipient, m.text, m.sender) for m in messages)


def by_mail(drop: Drop, document: str) -> list[Message]:
    with connect(drop.hub) as client:
        code, reply = send(client, mail(document, to=CLICKATELL), [CLICKATELL])
    assert code == 250, reply
    return queued(drop.hub, reply)


def by_ftp(drop: Drop, name: str, document: str) -> tuple[list[list[str]], list[Message]]:
    drop.upload(name, document)
    rows = drop.result(name)
    found = [drop.hub.spool.get_message(r[4]) for r in rows[1:] if r[3] == "accepted"]
    return rows, [m for m in found if m is not None]


@pytest.mark.parametrize(("document", "expected"), [
    pytest.param(  # text: repeated inserts a newline, data: joins without one, in order
        "api_id:1234\nuser:bob\npassword:secret\ntext:Hello\ndata: world\ntext:again\n"
        "from:ACME\nto:0821234567\nto:27831234567\n",
        [("+27821234567", "Hello world\nagain", "ACME"),
         ("+27831234567", "Hello world\nagain", "ACME")], id="text-data-to"),
    pytest.param(  # a template: csv: rows, number first, split at delimiter:
        "api_id:1\ntext:Hi #field1#, pay #field2#\ndelimiter:|\ncsv:0821234567|Fred|R15\n"
        "csv:27831234567|Ann|R2\nfrom:ACME\n",
        [("+27821234567", "Hi Fred, pay R15", "ACME"),
         ("+27831234567", "Hi Ann, pay R2", "ACME")], id="template"),
    pytest.param(  # unicode:1: UCS-2 in hex, here split over a text: and a data: line
        "unicode:1\ntext:00430061\ndata:006600E9\nto:0821234567\n",
        [("+27821234567", "Café", None)], id="unicode"),
])
def test_one_clickatell_document_gives_the_same_sms_by_mail_and_by_ftp(
        both: Drop, document: str, expected: list[Sms]) -> None:
    mailed = _sms(by_mail(both, document))
    rows, uploaded = by_ftp(both, "doc.txt", document)
    assert [r[3] for r in rows[1:1 + len(expected)]] == ["accepted"] * len(expected)
    assert mailed == _sms(uploaded) == expected


def test_climsgid_of_a_one_sms_document_is_kept_by_both(make_both: Callable[..., Drop]) -> None:
    drop = make_both()
    document = "text:Hi\nclimsgid:ref-1\nto:0821234567\n"
    [mailed] = by_mail(drop, document)
    assert mailed.client_ref == "ref-1"
    second = make_both()  # another hub: the reference names one SMS per account
    _, [uploaded] = by_ftp(second, "ref.txt", document)
    assert uploaded.client_ref == "ref-1"


def test_several_numbers_on_one_to_line_are_split_by_mail_and_refused_by_ftp(
        both: Drop) -> None:
    # A batch file is resumed by line (the spool maps stored messages back by their
    # line), so the FTP drop keeps one row per line and refuses such a line whole.
    document = "text:Hi\nto:0821234567,0831234567\nto:0841234567\n"
    assert _sms(by_mail(both, document)) == [
        ("+27821234567", "Hi", None), ("+27831234567", "Hi", None),
        ("+27841234567", "Hi", None)]
    rows, uploaded = by_ftp(both, "list.txt", document)
    assert rows[1][:2] == ["2", "0821234567,0831234567"] and rows[1][3] == "rejected"
    assert "one number per to: line" in rows[1][7]
    assert rows[2][:4] == ["3", "0841234567", "'+27841234567", "accepted"]
    assert _sms(uploaded) == [("+27841234567", "Hi", None)]


def test_a_winsms_time_schedules_the_same_moment_by_mail_ftp_and_xml(
        make_both: Callable[..., Drop]) -> None:
    drop = make_both(subject_mode=SubjectMode.WINSMS)
    hub = drop.hub
    at = sa_minute_ahead()
    when = f"{at:%Y%m%d%H%M}"
    with connect(hub) as client:
        _code, reply = send(client, mail("Hi", subject=when), [f"27821234567@{DOMAIN}"])
    [mailed] = queued(hub, reply)
    _, [uploaded] = by_ftp(drop, "winsms.txt", f"acme,pw,{when}\n0821234567,Hi\n")
    xml = (b"<WinSMS_Multi_Message><User>acme</User><Password>" + PASSWORD.encode()
           + f"</Password><Scheduled>{when}</Scheduled><Messages><Message>".encode()
           + b"<MessageText>Hi</MessageText><Numbers><Number>27821234567</Number></Numbers>"
           b"</Message></Messages></WinSMS_Multi_Message>")
    answer = httpx.post(f"{hub.url}/api/xmlsendsmsmulti.asp", content=xml,
                        headers={"Content-Type": "application/xml"})
    stored = hub.spool.get_message(etree.fromstring(answer.content).findtext(
        "Message/MessageID") or "")
    assert stored is not None
    moments = {m.send_at for m in (mailed, uploaded, stored)}
    assert moments == {at}  # each read as SA time


def test_a_bad_winsms_time_is_refused_in_each_transports_own_way(
        make_both: Callable[..., Drop]) -> None:
    drop = make_both(subject_mode=SubjectMode.WINSMS)
    with connect(drop.hub) as client:  # email: invalid_time, a 550 for the only recipient
        code, reply = send(client, mail("Hi", subject="203013020830"),
                           [f"27821234567@{DOMAIN}"])
    assert code == 550 and "is not a YYYYMMDDHHMM schedule time" in reply
    # FTP: twelve digits that are no time stop the file with the reason; nothing is sent.
    drop.upload("bad.txt", "acme,pw,203013020830\n0821234567,Hi\n")
    rows = drop.result("bad.txt")
    assert all(r[3] != "accepted" for r in rows[1:])
    assert any("not a real CCYYMMDDHHmm time" in r[7] for r in rows[1:] if len(r) > 7)
