"""What the libraries log while the real SMTP listener and FTP drop serve real clients,
at DEBUG: never a full phone number, a message text or a password (hub/logs.py)."""

from __future__ import annotations

import base64
import io
import logging
import ssl
from collections.abc import Callable, Iterator

import pytest

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
    levels = {name: logging.getLogger(name).level for name in ("", *CHATTY)}
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in CHATTY:  # an earlier test's CLI run may have quietened them
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
