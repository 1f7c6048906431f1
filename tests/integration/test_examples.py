"""Every shipped example works: each document in schemas/examples, each XML block of
docs/xml.md and each JSON body in the README's and docs' commands is posted to a running
hub whose account matches the example's credentials, and gets success (or, for a response
document posted as a request, its documented error)."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree

from hub.accounts import hash_password, key_digest, load_secret
from tests.hubthread import HubThread

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "schemas" / "examples").glob("*.xml"))
NS = "urn:smshub:xml:1"
# What the examples' account is called and logs in with (the docs write "…" for it).
ACCOUNT, PASSWORD = "acme", "correct horse battery"
EXAMPLE_KEY = "shk_0123456789ab_exampleexampleexampleexampleexample"  # balanceRequest.xml
REQUESTS = {"submitRequest", "statusRequest", "balanceRequest", "repliesRequest"}
_FENCE = re.compile(r"```xml\n(.*?)```", re.S)
_INLINE = re.compile(r"`(<(?:balance|replies)Request .*?>)`")
# A curl command's JSON body and the path it is posted to (the line after it).
_JSON_BODY = re.compile(r"-d '(\{.*?\})'\s*\\\n\s*http://127\.0\.0\.1:8080(/[\w/]+)")
# Example hosts the docs use for webhook endpoints, and a public address each stands for:
# this machine resolves no names outside it (DNS is outside the system, so it is stubbed).
_EXAMPLE_HOSTS = {"hooks.example.com": "93.184.215.14"}


@dataclass(frozen=True, slots=True)
class Dialect:
    path: str
    answer_root: str


# Each request root of docs/xml.md: where it is posted and the root of its answer.
DIALECTS = {
    "submitRequest": Dialect("/xml", f"{{{NS}}}submitResponse"),
    "statusRequest": Dialect("/xml", f"{{{NS}}}statusResponse"),
    "balanceRequest": Dialect("/xml", f"{{{NS}}}balanceResponse"),
    "repliesRequest": Dialect("/xml", f"{{{NS}}}repliesResponse"),
    "WinSMS_Multi_Message": Dialect("/api/xmlsendsmsmulti.asp", "WinSMS_Response"),
    "WinSMS_StatusRequest": Dialect("/api/XMLGetStatus.asp", "WinSMS_StatusResponse"),
    "WinSMS_Replies": Dialect("/api/XMLGetReplies.asp", "WinSMS_RepliesResponse"),
    "clickAPI": Dialect("/xml/xml", "clickAPI"),
    "message": Dialect("/cgi-bin/sendsms", ""),  # Kannel answers text
}


@pytest.fixture
def hub(make_hub: Callable[..., HubThread]) -> HubThread:
    made = make_hub()
    made.account(ACCOUNT, credits="100", sender_ids=("ACME",))
    made.spool.set_password_hash(ACCOUNT, hash_password(PASSWORD))
    made.spool.add_api_key(ACCOUNT, EXAMPLE_KEY.split("_")[1],
                           key_digest(load_secret(made.config.data_dir), EXAMPLE_KEY))
    return made


@pytest.fixture
def client(hub: HubThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hub.url, timeout=30) as c:
        yield c


def _bearer(hub: HubThread) -> dict[str, str]:
    return {"Authorization": f"Bearer {hub.account('bearer', sender_ids=('ACME',))}"}


def test_every_example_document_succeeds_or_gets_its_documented_error(
    hub: HubThread, client: httpx.Client
) -> None:
    header = _bearer(hub)  # for the examples that carry no credentials of their own
    for example in EXAMPLES:
        body = example.read_bytes()
        root = etree.fromstring(body)
        name = etree.QName(root).localname
        has_credentials = root.find(f"{{{NS}}}credentials") is not None
        r = client.post("/xml", content=body, headers={} if has_credentials else header)
        answer = etree.fromstring(r.content)
        if name in REQUESTS:
            assert r.status_code == 200, (example.name, r.text)
            assert answer.tag == f"{{{NS}}}{name.replace('Request', 'Response')}", example.name
            assert "rejected" not in {etree.QName(e).localname for e in answer}, r.text
        else:  # a response document posted as a request: docs/xml.md's "Errors" table
            assert r.status_code == 400, (example.name, r.text)
            assert (answer.tag, answer.get("code")) == (f"{{{NS}}}error", "unknown_operation")


def _doc_blocks(path: Path) -> list[str]:
    """The XML documents of a page's ```xml blocks (`→` separates a request from its
    answer inside one block) and its one-line requests in backquotes."""
    text = path.read_text()
    return [part.strip() for block in _FENCE.findall(text) for part in block.split("→")
            ] + _INLINE.findall(text)


def _with_password(document: str) -> str:
    """The account's password where the docs write `…` for it, in each dialect's element."""
    for before, after in (("<Password>…", "<Password>"), ("<password>…", "<password>"),
                          ("<pass>…", "<pass>")):
        document = document.replace(before, after + PASSWORD)
    return document


def test_every_xml_document_in_docs_xml_md_works_against_the_hub(
    hub: HubThread, client: httpx.Client
) -> None:
    header = _bearer(hub)
    answers: set[str] = {f"{{{NS}}}error"}
    documented: list[str] = []
    for block in _doc_blocks(ROOT / "docs" / "xml.md"):
        text = _with_password(block)
        root = etree.fromstring(text.encode())  # every block is well-formed XML
        name = etree.QName(root).localname
        if name == "clickAPI" and root.find("sendMsg") is not None:
            r = client.post("/xml/xml", data={"data": text})
            assert r.status_code == 200 and b"<fault>" not in r.content, r.text
            answers.add(etree.fromstring(r.content).tag)
        elif name == "message":  # Kannel's sendsms
            r = client.post("/cgi-bin/sendsms", content=text.encode(),
                            headers={"Content-Type": "text/xml"})
            assert r.status_code == 202 and r.text.startswith("0: Accepted"), r.text
        elif name in DIALECTS:
            dialect = DIALECTS[name]
            r = client.post(dialect.path, content=text.encode(),
                            headers=header if root.tag.startswith(f"{{{NS}}}") else {})
            assert r.status_code == 200, (name, r.text)
            answer = etree.fromstring(r.content)
            assert answer.tag == dialect.answer_root, r.text
            assert answer.find("Error") is None, r.text  # WinSMS: no whole-document error
            assert "rejected" not in {etree.QName(e).localname for e in answer}, r.text
            answers.add(answer.tag)
        else:
            documented.append(root.tag)
    # Every answer shown is one the hub really gives to the requests shown.
    assert documented and set(documented) <= answers, set(documented) - answers


def test_every_json_body_in_the_readme_and_docs_is_accepted(
    hub: HubThread, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = socket.getaddrinfo

    def resolve(host: str, *args: Any, **kwargs: Any) -> Any:
        return real(_EXAMPLE_HOSTS.get(host, host), *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    bodies = [found for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
              for found in _JSON_BODY.findall(page.read_text())]
    assert {path for _, path in bodies} >= {"/v1/messages", "/v1/webhooks"}
    headers = {**_bearer(hub), "Content-Type": "application/json"}
    for body, path in bodies:
        r = client.post(path, content=body, headers=headers)
        assert r.status_code in (201, 202), (path, body, r.text)


