"""Hostile XML against every XML endpoint of a real server (the native API and the WinSMS,
Clickatell and Kannel dialects): entities, DTDs, XInclude, schema hints, depth, size,
attributes and encodings. Each is refused fast in the endpoint's own format, opens no file
and no socket, stays within the memory bound, and the hub still serves afterwards (P17)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote_from_bytes

import httpx
import pytest
from lxml import etree

from tests.hubthread import HubThread
from tests.integration.hostile.conftest import running_hub
from tests.integration.hostile.watch import Peak, Traps, healthz_answers, serves_http

NS = "urn:smshub:xml:1"
MAX_BODY = 64 * 1024  # [xml] max_body_bytes of this module's hub: the size cases cross it


@dataclass(frozen=True)
class Served:
    hub: HubThread
    key: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with running_hub(tmp_path_factory.mktemp("xml"), xml={"max_body_bytes": MAX_BODY}) as hub:
        yield Served(hub, hub.account("acme", credits="1000"))


# --- the endpoints, each with its document shape and its own way of refusing ----------


@dataclass(frozen=True)
class Endpoint:
    path: str
    # (prolog, root attributes, message text) -> a document of this endpoint's shape
    document: Callable[[str, str, str], str]
    # the endpoint's refusal, checked for its format: its code or description
    refusal: Callable[[httpx.Response], str]
    form: bool = False  # the document goes in a `data` form field, as its clients send it

    def __str__(self) -> str:
        return self.path


def _native(prolog: str, attrs: str, text: str) -> str:
    return (f'<?xml version="1.0"?>{prolog}<submitRequest xmlns="{NS}"{attrs}><message>'
            f"<to>0821234567</to><text>{text}</text></message></submitRequest>")


def _native_refusal(r: httpx.Response) -> str:
    assert r.headers["content-type"].startswith("application/xml")
    root = etree.fromstring(r.content)
    assert root.tag == f"{{{NS}}}error"
    return f"{root.get('code')}: {root.findtext(f'{{{NS}}}message')}"


def _winsms(prolog: str, attrs: str, text: str) -> str:
    return (f'<?xml version="1.0"?>{prolog}<WinSMS_Multi_Message{attrs}><User>acme</User>'
            f"<Password>x</Password><Messages><Message><MessageText>{text}</MessageText>"
            "<Numbers><Number>0821234567</Number></Numbers></Message></Messages>"
            "</WinSMS_Multi_Message>")


def _winsms_refusal(r: httpx.Response) -> str:
    root = etree.fromstring(r.content)
    assert root.tag == "WinSMS_Response" and root.findtext("Error") == "INVALID", r.text
    return root.findtext("Description") or ""


def _clickatell(prolog: str, attrs: str, text: str) -> str:
    return (f'<?xml version="1.0"?>{prolog}<clickAPI{attrs}><sendMsg><api_id>1</api_id>'
            f"<user>acme</user><password>x</password><to>27821234567</to><text>{text}</text>"
            "</sendMsg></clickAPI>")


def _clickatell_refusal(r: httpx.Response) -> str:
    root = etree.fromstring(r.content)
    assert root.tag == "clickAPI" and root[0].tag == "xmlErrorResp", r.text
    assert root[0].findtext("fault") == "101, Invalid or missing parameters"
    return root[0].findtext("description") or ""


def _kannel(prolog: str, attrs: str, text: str) -> str:
    return (f'<?xml version="1.0"?>{prolog}<message{attrs}><submit><da><number>27821234567'
            f"</number></da><oa><number>ACME</number></oa><ud>{text}</ud><from><user>acme"
            "</user><pass>x</pass></from></submit></message>")


def _kannel_refusal(r: httpx.Response) -> str:
    assert r.headers["content-type"].startswith("text/html")
    assert r.text.endswith("rejected") or r.text.startswith("Request body over"), r.text
    return r.text


ENDPOINTS = [
    Endpoint("/xml", _native, _native_refusal),
    Endpoint("/api/xmlsendsmsmulti.asp", _winsms, _winsms_refusal),
    Endpoint("/xml/xml", _clickatell, _clickatell_refusal, form=True),
    Endpoint("/cgi-bin/sendsms", _kannel, _kannel_refusal),
]


def post(served: Served, endpoint: Endpoint, body: bytes | Iterator[bytes]) -> httpx.Response:
    media = "text/xml"
    if endpoint.form and isinstance(body, bytes):
        body = b"data=" + quote_from_bytes(body, safe="<>/\" :!-_[]?.,#").encode()
        media = "application/x-www-form-urlencoded"
    return httpx.post(f"{served.hub.url}{endpoint.path}", content=body, timeout=20,
                      headers={"Authorization": f"Bearer {served.key}", "Content-Type": media})


# --- the attacks: (prolog, root attributes, text) and what the refusal must say ---------


@dataclass(frozen=True)
class Attack:
    build: Callable[[Traps], tuple[str, str, str]]
    says: str  # in the refusal of every endpoint (the native code, the dialects' words)
    encoding: str = "utf-8"


def _laughs(_: Traps) -> tuple[str, str, str]:
    levels = ['<!ENTITY l0 "ha">'] + [
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)]
    return f"<!DOCTYPE r [{''.join(levels)}]>", "", "&l9;"


def _encoded(codec: str, declared: str) -> Attack:
    """A DOCTYPE with an external entity, in an encoding the byte scan may not know."""
    return Attack(lambda t: (f'<!DOCTYPE r [<!ENTITY f SYSTEM "file://{t.fifo}">]>', "",
                             "&f;"), "DOCTYPE|well-formed", f"{codec}:{declared}")


XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
ATTACKS = {
    "billion laughs": Attack(_laughs, "DOCTYPE"),
    "quadratic blowup": Attack(lambda _: (
        f'<!DOCTYPE r [<!ENTITY a "{"x" * 20_000}">]>', "", "&a;" * 2_000), "DOCTYPE"),
    "external entity to a file": Attack(lambda t: (
        f'<!DOCTYPE r [<!ENTITY f SYSTEM "file://{t.fifo}">'
        '<!ENTITY p SYSTEM "file:///etc/passwd">]>', "", "&f;&p;"), "DOCTYPE"),
    "external entity after a long comment": Attack(lambda t: (
        f"<!-- {'pad ' * 2000} -->"  # beyond the byte scan of the first 4 KiB
        f'<!DOCTYPE r [<!ENTITY f SYSTEM "file://{t.fifo}">]>', "", "&f;"), "DOCTYPE"),
    "external entity to a URL": Attack(lambda t: (
        f'<!DOCTYPE r [<!ENTITY f SYSTEM "{t.url}/x">]>', "", "&f;"), "DOCTYPE"),
    "external DTD": Attack(lambda t: (
        f'<!DOCTYPE r SYSTEM "{t.url}/evil.dtd">', "", "hi"), "DOCTYPE"),
    "public DTD": Attack(lambda t: (
        f'<!DOCTYPE r PUBLIC "-//X//Y" "file://{t.fifo}">', "", "hi"), "DOCTYPE"),
    "parameter entities": Attack(lambda t: (
        f'<!DOCTYPE r [<!ENTITY % remote SYSTEM "{t.url}/p.dtd">'
        f'<!ENTITY % local SYSTEM "file://{t.fifo}">%remote;%local;]>', "", "hi"),
        "DOCTYPE"),
    "schemaLocation hint": Attack(lambda t: (
        "", f' {XSI} xsi:schemaLocation="{NS} {t.url}/evil.xsd"', "hi"), "schemaLocation"),
    "noNamespaceSchemaLocation hint": Attack(lambda t: (
        "", f' {XSI} xsi:noNamespaceSchemaLocation="file://{t.fifo}"', "hi"),
        "schemaLocation"),
    "schema hint deep inside": Attack(lambda t: (
        "", "", f'<b {XSI} xsi:schemaLocation="{NS} {t.url}/x.xsd"/>'), "schemaLocation"),
    "5,000 attributes": Attack(lambda _: (
        "", " " + " ".join(f'a{i}="x"' for i in range(5_000)), "hi"), "attributes"),
    "nesting 300 deep": Attack(lambda _: ("", "", "<a>" * 300 + "</a>" * 300),
                               "well-formed"),
    "nesting 8,000 deep": Attack(lambda _: ("", "", "<a>" * 8_000 + "</a>" * 8_000),
                                  "well-formed"),
    "unknown encoding": Attack(lambda _: ("", "", "hi"), "well-formed", "utf-8:x-evil"),
    "EBCDIC": _encoded("cp037", "IBM037"),
    "UTF-16 with a DOCTYPE": _encoded("utf-16", "UTF-16"),
    "UTF-16BE without a BOM": _encoded("utf-16-be", "UTF-16BE"),
    "UTF-32 with a DOCTYPE": _encoded("utf-32", "UTF-32"),
    "UTF-7 with a DOCTYPE": _encoded("utf-7", "UTF-7"),
    "declared UTF-8, sent UTF-16": _encoded("utf-16-le", "UTF-8"),
    "not XML": Attack(lambda _: ("", "", "<unclosed"), "well-formed"),
}


def _body(attack: Attack, traps: Traps, endpoint: Endpoint) -> bytes:
    codec, _, declared = attack.encoding.partition(":")
    text = endpoint.document(*attack.build(traps))
    if declared:
        text = text.replace('<?xml version="1.0"?>',
                            f'<?xml version="1.0" encoding="{declared}"?>', 1)
    return text.encode(codec)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
@pytest.mark.parametrize("name", list(ATTACKS))
def test_hostile_xml_is_refused_in_the_endpoints_own_format(
    served: Served, traps: Traps, endpoint: Endpoint, name: str
) -> None:
    attack = ATTACKS[name]
    body = _body(attack, traps, endpoint)
    with Peak() as peak:
        started = time.monotonic()
        r = post(served, endpoint, body)
        elapsed = time.monotonic() - started
    assert r.status_code == 400, r.text
    said = endpoint.refusal(r)
    assert any(word in said for word in attack.says.split("|")), said
    assert b"root:" not in r.content and b"Traceback" not in r.content
    assert elapsed < 1.0
    traps.assert_untouched()
    peak.assert_within()
    serves_http(served.hub, served.key)


def test_xinclude_is_never_processed(served: Served, traps: Traps) -> None:
    include = (f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" '
               f'href="file://{traps.fifo}" parse="text"/>')
    for endpoint in ENDPOINTS:
        r = post(served, endpoint, endpoint.document("", "", include).encode())
        assert r.status_code < 500 and b"root:" not in r.content, r.text
    r = post(served, ENDPOINTS[0], _native("", "", include).encode())
    assert r.status_code == 400 and _native_refusal(r).startswith("invalid_document")
    traps.assert_untouched()
    serves_http(served.hub, served.key)


def _endless(chunk: bytes) -> Iterator[bytes]:
    yield b'<?xml version="1.0"?><submitRequest><message><to>0821234567</to><text>'
    while True:  # the server must cut it off: it never ends on its own
        yield chunk


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
@pytest.mark.parametrize("how", ["declared", "streamed"])
def test_xml_body_over_the_limit_gets_413_in_the_endpoints_own_format(
    served: Served, endpoint: Endpoint, how: str
) -> None:
    body = (endpoint.document("", "", "x" * (MAX_BODY + 1)).encode() if how == "declared"
            else _endless(b"<!-- padding -->" * 64))
    with Peak() as peak:
        r = post(served, endpoint, body)
    assert r.status_code == 413, r.text
    said = endpoint.refusal(r)
    assert str(MAX_BODY) in said, said
    peak.assert_within()
    serves_http(served.hub, served.key)


# --- documents that cost the validator (each once froze the whole hub) ----------------


@pytest.mark.timeout(30)  # xmlschema took 38 s to explain this one
def test_a_hundred_thousand_unexpected_children_get_one_bounded_explanation(
    tmp_path: Path,
) -> None:
    body = f'<submitRequest xmlns="{NS}">' + "<x/>" * 100_000 + "</submitRequest>"
    with running_hub(tmp_path / "hub") as hub:
        key = hub.account()
        with Peak() as peak:
            r = httpx.post(f"{hub.url}/xml", content=body.encode(), timeout=20,
                           headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 400
        root = etree.fromstring(r.content)
        assert root.get("code") == "invalid_document"
        [violation] = root.findall(f"{{{NS}}}violation")
        assert violation.get("path") == "/submitRequest/x[1]"
        assert "not expected" in (violation.text or "") and "{" not in (violation.text or "")
        peak.assert_within()
        serves_http(hub, key)


def test_every_invalid_message_is_counted_but_only_a_hundred_are_listed(
    served: Served,
) -> None:
    message = "<message><to>0821234567</to><text>hi</text><bogus/></message>"
    body = f'<submitRequest xmlns="{NS}">{message * 1_000}</submitRequest>'.encode()
    r = post(served, ENDPOINTS[0], body)
    root = etree.fromstring(r.content)
    assert r.status_code == 400 and root.get("code") == "invalid_document"
    violations = root.findall(f"{{{NS}}}violation")
    assert len(violations) == 100
    assert violations[99].get("path") == "/submitRequest/message[100]/bogus"


@pytest.mark.timeout(30)
def test_the_hub_keeps_answering_while_hostile_documents_are_refused(tmp_path: Path) -> None:
    many_attributes = _native("", " " + " ".join(f'a{i}="x"' for i in range(1_500)), "hi")
    children = f'<submitRequest xmlns="{NS}">' + "<x/>" * 100_000 + "</submitRequest>"
    hostile = [many_attributes.encode(), children.encode()]
    with (running_hub(tmp_path / "hub") as hub,
          httpx.Client(base_url=hub.url, timeout=20) as client,
          ThreadPoolExecutor(4) as pool):
        posts = [pool.submit(client.post, "/xml", content=body) for body in hostile * 2]
        for _ in range(20):
            healthz_answers(hub)
        answers = [p.result().status_code for p in posts]
    assert answers == [400] * 4
