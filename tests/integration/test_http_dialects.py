"""What the HTTP dialects share on a real server: each switched off by `[dialects]`
(404 on all of its vendor's paths, HTTP and XML), failed logins limited per client
address (answered in each dialect's words), credentials in the URL taken on their paths
only, and never a password or session id in any log, uvicorn's access lines included."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from urllib.parse import quote

import httpx
import pytest

from hub.accounts import hash_password
from tests.hubthread import HubThread
from tests.integration.test_log_privacy import _debug, captured

MakeHub = Callable[..., HubThread]
_ = captured  # a fixture used by name
CANARY = "Canary-Pw-7f3q9Zx"
WRONG = "Canary-Wrong-K2v8"

PATHS = {
    "winsms": ["/api/auth.asp", "/api/credits.asp", "/api/batchmessage.asp",
               "/api/xmlsendsmsmulti.asp", "/api/XMLGetStatus.asp"],
    "clickatell": ["/http/auth", "/http/sendmsg", "/http/getbalance", "/xml/xml"],
    "kannel": ["/cgi-bin/sendsms"],
}


def with_password(hub: HubThread, password: str = "foo") -> HubThread:
    hub.account("acme", credits="10", price="0.25", sender_ids=("ACME",))
    hub.spool.set_password_hash("acme", hash_password(password))
    return hub


@pytest.mark.parametrize("dialect", list(PATHS))
def test_a_dialect_switched_off_answers_404_on_every_path_of_its_vendor(
        make_hub: MakeHub, dialect: str) -> None:
    hub = with_password(make_hub(dialects={dialect: False}))
    for path in PATHS[dialect]:
        for method in ("GET", "POST"):
            r = httpx.request(method, f"{hub.url}{path}?user=acme")
            assert r.status_code == 404, (method, path, r.text)
    others = [p for name, paths in PATHS.items() if name != dialect for p in paths]
    for path in others:
        assert httpx.post(f"{hub.url}{path}?user=acme").status_code != 404, path


def test_failed_logins_from_one_address_are_refused_in_each_dialects_words_xml_too(
        make_hub: MakeHub) -> None:
    hub = with_password(make_hub(dialects={"login_failures_per_ip": 3,
                                           "login_lockout_seconds": 60}))
    url = hub.url
    for _ in range(3):
        assert httpx.get(f"{url}/api/auth.asp?user=acme&password=bad").text == "Login=FAIL"
    # The right password now: refused unchecked, until the failures age out.
    locked = [
        httpx.get(f"{url}/api/auth.asp?user=acme&password=foo"),
        httpx.get(f"{url}/http/auth?user=acme&password=foo&api_id=1"),
        httpx.get(f"{url}/cgi-bin/sendsms?username=acme&password=foo&to=0821234567&text=x"),
    ]
    assert [(r.status_code, r.text) for r in locked] == [
        (200, "Login=ACCOUNTLOCKED"), (200, "ERR: 007, IP lockdown violation"),
        (403, "Authorization failed for sendsms")]
    assert all(r.headers["retry-after"] == "60" for r in locked)
    # The XML forms are the same dialects: the same count, each in its own document.
    winsms = httpx.post(f"{url}/api/xmlsendsmsmulti.asp", content=(
        b"<WinSMS_Multi_Message><User>acme</User><Password>foo</Password><Messages><Message>"
        b"<MessageText>x</MessageText><Numbers><Number>27825550101</Number></Numbers>"
        b"</Message></Messages></WinSMS_Multi_Message>"))
    assert "<Error>ACCOUNTLOCKED</Error>" in winsms.text
    doc = "<clickAPI><auth><user>acme</user><password>foo</password></auth></clickAPI>"
    clickatell = httpx.get(f"{url}/xml/xml?data={quote(doc)}")
    assert "<fault>007, IP lockdown violation</fault>" in clickatell.text
    kannel = httpx.post(f"{url}/cgi-bin/sendsms", headers={"Content-Type": "text/xml"},
                        content=b"<message><submit><da><number>0821234567</number></da>"
                                b"<ud>x</ud><from><user>acme</user><pass>foo</pass></from>"
                                b"</submit></message>")
    assert (kannel.status_code, kannel.text) == (403, "Authorization failed for sendsms")
    # Other protocols' logins are not this limit's business.
    key = hub.account("other")
    r = httpx.post(f"{url}/v1/messages", json={"to": "0821234567", "text": "x"},
                   headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 202


def test_credentials_in_the_url_are_taken_on_dialect_paths_only(make_hub: MakeHub) -> None:
    hub = with_password(make_hub())
    assert httpx.get(f"{hub.url}/api/auth.asp?user=acme&password=foo").text == "Login=OK"
    for path in ("/v1/messages?password=foo", "/api/xmlsendsmsmulti.asp?password=foo",
                 "/http/unknown?password=foo", "/API/AUTH.ASP?password=foo"):
        r = httpx.post(f"{hub.url}{path}")
        assert r.status_code == 400 and "credentials_in_url" in r.text, path


def test_no_password_or_session_id_in_any_log(
        captured: io.StringIO, make_hub: MakeHub) -> None:
    hub = with_password(make_hub(), CANARY)
    _debug(hub)
    url, pw = hub.url, quote(CANARY)
    for password in (pw, WRONG):
        httpx.get(f"{url}/api/auth.asp?User=acme&Password={password}")
        httpx.post(f"{url}/api/batchmessage.asp",
                   data={"user": "acme", "password": CANARY, "message": "Hi",
                         "numbers": "27825550101;"})
        httpx.get(f"{url}/cgi-bin/sendsms?user=acme&pass={password}&to=0821234567&text=Hi")
        httpx.get(f"{url}/http/sendmsg?user=acme&password={password}&to=27821234567&text=x")
    session = httpx.get(f"{url}/http/auth?user=acme&password={pw}&api_id=1").text[4:]
    httpx.get(f"{url}/http/ping?session_id={session}")
    # uvicorn's access log is off; were it on, its lines carry the whole URL. An earlier
    # test's uvicorn may have configured that logger (level, propagation): undone here.
    access = logging.getLogger("uvicorn.access")
    state = (access.level, access.propagate, access.disabled)
    access.setLevel(logging.NOTSET)
    access.propagate, access.disabled = True, False
    try:
        access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:50000", "GET",
                    f"/http/ping?session_id={session}&password={pw}&pass={pw}", "1.1", 200)
    finally:
        access.setLevel(state[0])
        access.propagate, access.disabled = state[1], state[2]
    hub.stop()
    logged = captured.getvalue()
    assert "/http/ping" in logged and "[redacted]" in logged  # written, scrubbed
    for secret in (CANARY, pw, WRONG, session):
        assert secret not in logged
