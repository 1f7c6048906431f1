"""Classic XML attacks against `POST /xml` on a real server: each gets a fast 400 and the
hub opens no file and no socket while handling it.

Detection that would really fail if an entity were resolved: file references point at a
FIFO (opening it for reading blocks until a writer appears, so a resolving parser would
hang the request, and a still-blocked reader is visible afterwards), network references
point at a listening socket that must have no connection waiting, and a Python audit hook
records any `open` or `socket.connect` of either from Python code (xmlschema)."""

from __future__ import annotations

import errno
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree

from tests.hubthread import HubThread

MakeHub = Callable[..., HubThread]
NS = "urn:smshub:xml:1"


@dataclass
class Traps:
    fifo: Path
    listener: socket.socket
    seen: list[tuple[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def assert_untouched(self) -> None:
        assert not self.seen, self.seen
        try:  # succeeds only if some reader is blocked opening the FIFO
            fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            assert exc.errno == errno.ENXIO
        else:
            os.close(fd)
            pytest.fail("the hub opened the FIFO named in the document")
        with pytest.raises(BlockingIOError):
            self.listener.accept()


_TRAPS: list[Traps] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event not in ("open", "socket.connect") or not _TRAPS:
        return
    traps = _TRAPS[-1]
    target = str(args[0] if event == "open" else args[1])
    if str(traps.fifo) in target or str(traps.listener.getsockname()[1]) in target:
        traps.seen.append((event, target))


sys.addaudithook(_audit)  # cannot be removed; it only looks at the traps of the running test


@pytest.fixture
def traps(tmp_path: Path) -> Iterator[Traps]:
    fifo = tmp_path / "secret"
    os.mkfifo(fifo)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    made = Traps(fifo, listener)
    _TRAPS.append(made)
    yield made
    _TRAPS.remove(made)
    listener.close()


@pytest.fixture
def post(make_hub: MakeHub) -> Callable[[bytes], httpx.Response]:
    hub = make_hub()
    key = hub.account()

    def send(body: bytes) -> httpx.Response:
        return httpx.post(f"{hub.url}/xml", content=body, timeout=5,
                          headers={"Authorization": f"Bearer {key}"})

    return send


def attack(post: Callable[[bytes], httpx.Response], traps: Traps, body: str,
           code: str = "doctype_forbidden") -> None:
    started = time.monotonic()
    r = post(body.encode())
    elapsed = time.monotonic() - started
    assert r.status_code == 400, r.text
    assert etree.fromstring(r.content).get("code") == code
    assert elapsed < 1.0
    assert b"root:" not in r.content
    traps.assert_untouched()


def submit(text: str, prolog: str = "", attrs: str = "") -> str:
    return (f'<?xml version="1.0"?>{prolog}<submitRequest xmlns="{NS}"{attrs}><message>'
            f"<to>0821234567</to><text>{text}</text></message></submitRequest>")


def test_billion_laughs_is_refused_fast(post: Callable[[bytes], httpx.Response],
                                        traps: Traps) -> None:
    levels = ['<!ENTITY l0 "ha">'] + [
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)]
    attack(post, traps, submit("&l9;", f"<!DOCTYPE submitRequest [{''.join(levels)}]>"))


def test_quadratic_blowup_is_refused_fast(post: Callable[[bytes], httpx.Response],
                                          traps: Traps) -> None:
    prolog = f'<!DOCTYPE submitRequest [<!ENTITY a "{"x" * 50_000}">]>'
    attack(post, traps, submit("&a;" * 5_000, prolog))


def test_external_entity_is_never_read(post: Callable[[bytes], httpx.Response],
                                       traps: Traps) -> None:
    prolog = (f'<!DOCTYPE submitRequest [<!ENTITY f SYSTEM "file://{traps.fifo}">'
              '<!ENTITY p SYSTEM "file:///etc/passwd">]>')
    attack(post, traps, submit("&f;&p;", prolog))


def test_external_entity_after_a_long_comment_is_still_refused_after_parsing(
    post: Callable[[bytes], httpx.Response], traps: Traps
) -> None:
    # Beyond the cheap byte scan of the first 4 KiB: the parsed docinfo must catch it.
    prolog = (f"<!-- {'pad ' * 2000} -->"
              f'<!DOCTYPE submitRequest [<!ENTITY f SYSTEM "file://{traps.fifo}">]>')
    attack(post, traps, submit("&f;", prolog))


def test_external_dtd_is_never_fetched(post: Callable[[bytes], httpx.Response],
                                       traps: Traps) -> None:
    prolog = f'<!DOCTYPE submitRequest SYSTEM "{traps.url}/evil.dtd">'
    attack(post, traps, submit("hi", prolog))


def test_parameter_entities_are_never_expanded(post: Callable[[bytes], httpx.Response],
                                               traps: Traps) -> None:
    prolog = (f'<!DOCTYPE submitRequest [<!ENTITY % remote SYSTEM "{traps.url}/p.dtd">'
              f'<!ENTITY % local SYSTEM "file://{traps.fifo}">%remote;%local;]>')
    attack(post, traps, submit("hi", prolog))


def test_xinclude_is_not_processed(post: Callable[[bytes], httpx.Response],
                                   traps: Traps) -> None:
    include = (f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" '
               f'href="file://{traps.fifo}" parse="text"/>')
    attack(post, traps, submit(include), code="invalid_document")


def test_schema_location_hint_to_a_url_is_refused(post: Callable[[bytes], httpx.Response],
                                                  traps: Traps) -> None:
    attrs = (' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
             f'xsi:schemaLocation="{NS} {traps.url}/evil.xsd"')
    attack(post, traps, submit("hi", attrs=attrs), code="schema_location_forbidden")


def test_utf16_document_with_a_doctype_is_refused(post: Callable[[bytes], httpx.Response],
                                                  traps: Traps) -> None:
    body = submit("&f;", f'<!DOCTYPE submitRequest [<!ENTITY f SYSTEM "file://{traps.fifo}">]>')
    r = post(body.replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>')
             .encode("utf-16"))
    assert r.status_code == 400 and etree.fromstring(r.content).get("code") == "doctype_forbidden"
    traps.assert_untouched()


def test_nesting_deeper_than_the_parser_limit_is_refused(
    post: Callable[[bytes], httpx.Response]
) -> None:
    r = post(b"<a>" * 300 + b"</a>" * 300)
    assert r.status_code == 400 and etree.fromstring(r.content).get("code") == "invalid_xml"
    assert b"depth" in r.content


def test_body_over_the_limit_is_refused_while_streaming(make_hub: MakeHub) -> None:
    hub = make_hub(xml={"max_body_bytes": 4096})

    def chunks() -> Iterator[bytes]:
        yield b"<submitRequest>"
        for _ in range(100):
            yield b"<!-- padding -->" * 64

    r = httpx.post(f"{hub.url}/xml", content=chunks(), timeout=5)
    assert r.status_code == 413 and etree.fromstring(r.content).get("code") == "body_too_large"


# --- Documents that cost the validator (each once froze the whole hub) ----------------


def _many_attributes(count: int) -> str:
    return " " + " ".join(f'a{i}="x"' for i in range(count))


@pytest.mark.timeout(30)  # the explanation once grew with attributes squared: minutes
@pytest.mark.parametrize("path", ["/xml", "/api/XMLSendSMSMulti.asp", "/xml/xml",
                                  "/cgi-bin/sendsms"])
def test_an_element_with_thousands_of_attributes_is_refused_before_validation(
    make_hub: MakeHub, path: str
) -> None:
    hub = make_hub()
    body = submit("hi", attrs=_many_attributes(5_000)).encode()
    r = httpx.post(f"{hub.url}{path}", content=body, timeout=20)
    assert r.status_code == 400, r.text
    if path == "/xml":
        assert etree.fromstring(r.content).get("code") == "too_many_attributes"
    assert b"limit is 32" in r.content or path != "/xml"
    assert httpx.get(f"{hub.url}/healthz", timeout=5).status_code == 200


@pytest.mark.timeout(30)  # xmlschema took 38 s to explain this one
def test_a_hundred_thousand_unexpected_children_get_one_bounded_explanation(
    post: Callable[[bytes], httpx.Response]
) -> None:
    body = f'<submitRequest xmlns="{NS}">' + "<x/>" * 100_000 + "</submitRequest>"
    r = post(body.encode())
    assert r.status_code == 400
    root = etree.fromstring(r.content)
    assert root.get("code") == "invalid_document"
    [violation] = root.findall(f"{{{NS}}}violation")
    assert violation.get("path") == "/submitRequest/x[1]"
    assert "not expected" in (violation.text or "") and "{" not in (violation.text or "")


def test_every_invalid_message_is_counted_but_only_a_hundred_are_listed(
    post: Callable[[bytes], httpx.Response]
) -> None:
    message = "<message><to>0821234567</to><text>hi</text><bogus/></message>"
    r = post(f'<submitRequest xmlns="{NS}">{message * 5_000}</submitRequest>'.encode())
    root = etree.fromstring(r.content)
    assert r.status_code == 400 and root.get("code") == "invalid_document"
    violations = root.findall(f"{{{NS}}}violation")
    assert len(violations) == 100
    assert violations[99].get("path") == "/submitRequest/message[100]/bogus"


@pytest.mark.timeout(30)
def test_the_hub_keeps_answering_while_hostile_documents_are_refused(
    make_hub: MakeHub
) -> None:
    hub = make_hub()
    hostile = [submit("hi", attrs=_many_attributes(1_500)).encode(),
               (f'<submitRequest xmlns="{NS}">' + "<x/>" * 100_000 + "</submitRequest>").encode()]
    with httpx.Client(base_url=hub.url, timeout=20) as client:
        from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

        with ThreadPoolExecutor(4) as pool:
            posts = [pool.submit(client.post, "/xml", content=body) for body in hostile * 2]
            health = [client.get("/healthz", timeout=2).status_code for _ in range(20)]
            answers = [p.result().status_code for p in posts]
    assert health == [200] * 20 and answers == [400] * 4
