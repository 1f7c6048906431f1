"""What the hub and the libraries log while the real SMTP listener, FTP drop, JSON API, XML
API and Kannel's sendsms serve real clients, at DEBUG: never a full phone number, a
message text, an API key or a password (hub/logs.py; POPIA, issue #15)."""

from __future__ import annotations

import base64
import io
import logging
import ssl
from collections.abc import Callable, Iterator
from urllib.parse import urlencode

import httpx
import pytest

from hub.accounts import hash_password
from hub.cli import _logging
from hub.config import with_overrides
from hub.logs import CHATTY
from tests.ftpdrop import PASSWORD, make_drop, no_leaked_threads
from tests.hubthread import HubThread
from tests.integration.test_smtp_mail import DOMAIN, connect, mail, queued, send, smtp_section
from tests.integration.test_smtp_security import _prepared

pytestmark = pytest.mark.usefixtures("no_leaked_threads")
_ = no_leaked_threads  # a fixture used through pytestmark

NUMBER = "27821234590"
TEXT = "Canary text Zebra-Quokka"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Everything any logger writes, formatted, with the CLI's logging set up at debug."""
    root = logging.getLogger()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(name)s %(funcName)s: %(message)s"))
    quietened = (*CHATTY, "httpx", "alembic", "apscheduler")  # by the CLI below debug
    levels = {name: logging.getLogger(name).level for name in ("", *quietened)}
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in quietened:  # an earlier test's CLI run may have quietened them
        logging.getLogger(name).setLevel(logging.NOTSET)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _debug(hub: HubThread) -> None:
    _logging(with_overrides(hub.config, hub={"log_level": "debug"}))


def test_smtp_session_at_debug_logs_no_number_text_or_password(
        captured: io.StringIO, make_hub: Callable[..., HubThread],
        tls_files: dict[str, str], client_tls: ssl.SSLContext) -> None:
    hub = _prepared(make_hub(smtp=smtp_section(**tls_files)))
    _debug(hub)
    with connect(hub) as client:
        client.starttls(context=client_tls)
        client.ehlo("client.example")
        client.login("acme", PASSWORD)
        code, reply = send(client, mail(TEXT, to=f"{NUMBER}@{DOMAIN}"),
                           [f"{NUMBER}@{DOMAIN}"], sender="ops@acme.co.za")
    assert code == 250 and [m.text for m in queued(hub, reply)] == [TEXT]
    logged = captured.getvalue()
    assert "mail.log" in logged  # aiosmtpd did speak at debug
    plain = base64.b64encode(f"\0acme\0{PASSWORD}".encode()).decode()
    for secret in (NUMBER, TEXT, PASSWORD, plain):
        assert secret not in logged


def test_ftp_session_at_debug_logs_no_number_text_or_password(
        captured: io.StringIO, make_hub: Callable[..., HubThread]) -> None:
    drop = make_drop(make_hub)
    _debug(drop.hub)
    drop.upload(f"to-{NUMBER}.csv", f"to,text\n{NUMBER},{TEXT}\n")
    rows = drop.result(f"to-{NUMBER}.csv")
    assert rows[1][3] == "accepted"
    logged = captured.getvalue()
    assert "pyftpdlib" in logged  # pyftpdlib did speak at debug
    for secret in (NUMBER, TEXT, PASSWORD):
        assert secret not in logged


KEY_PASSWORD = "Pw-Canary-4711"


def test_rest_xml_and_kannel_at_debug_log_no_number_text_key_or_password(
        captured: io.StringIO, make_hub: Callable[..., HubThread]) -> None:
    hub = make_hub()
    key = hub.account("acme")
    hub.spool.set_password_hash("acme", hash_password(KEY_PASSWORD))
    _debug(hub)
    # SQLAlchemy keeps itself at WARNING unless told: an operator debugging SQL turns it
    # on, and its statement parameters and result rows must still say nothing.
    engine_log = logging.getLogger("sqlalchemy.engine")
    level = engine_log.level
    engine_log.setLevel(logging.DEBUG)
    try:
        _submit_by_rest_xml_and_kannel(hub, key)
    finally:
        engine_log.setLevel(level)
    logged = captured.getvalue()
    assert "sqlalchemy.engine" in logged  # the database layer did speak at debug
    for secret in (NUMBER, TEXT, "Zebra-Quokka", "Zebra", key, key.split("_", 2)[2],
                   KEY_PASSWORD):
        assert secret not in logged, secret
    # A number a line does carry is shown as its pseudonym, for correlation. Written
    # here rather than relied on from httpx's request line, which an earlier test's
    # logging set-up may have silenced.
    logging.getLogger("hub.intake").info("sent to %s", NUMBER)
    assert "27******590#" in captured.getvalue()


def _submit_by_rest_xml_and_kannel(hub: HubThread, key: str) -> None:
    auth = {"Authorization": f"Bearer {key}"}
    rest = httpx.post(f"{hub.url}/v1/messages", headers=auth,
                      json={"to": NUMBER, "text": TEXT, "class": "marketing"})
    assert rest.status_code == 202, rest.text
    xml = ('<?xml version="1.0" encoding="UTF-8"?><submitRequest xmlns="urn:smshub:xml:1">'
           f"<message><to>{NUMBER}</to><text>{TEXT}</text></message></submitRequest>")
    assert httpx.post(f"{hub.url}/xml", headers=auth, content=xml.encode()).status_code == 200
    query = urlencode({"username": "acme", "password": KEY_PASSWORD, "to": NUMBER,
                       "text": TEXT})
    kannel = httpx.get(f"{hub.url}/cgi-bin/sendsms?{query}")
    assert kannel.status_code == 202, kannel.text
