"""The listener's transport security against real smtplib clients: STARTTLS, AUTH and a
mail on uvloop (the loop `smshub serve` runs), `require_tls`, and the per-IP cap and
delay on failed AUTH."""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvloop

from hub.accounts import hash_password
from hub.mail import MailSettings
from tests.hubthread import HubThread
from tests.integration.conftest import test_config as hub_config
from tests.integration.test_smtp_mail import (
    DOMAIN,
    PASSWORD,
    SENDER,
    connect,
    mail,
    queued,
    send,
    smtp_section,
)


@pytest.fixture
def secure_hub(make_hub: Callable[..., HubThread],
               tls_files: dict[str, str]) -> Callable[..., HubThread]:
    def make(**smtp: Any) -> HubThread:
        return _prepared(make_hub(smtp=smtp_section(**tls_files, **smtp)))

    return make


def _prepared(hub: HubThread) -> HubThread:
    hub.account("acme")
    account = hub.spool.get_account("acme")
    hub.spool.set_password_hash("acme", hash_password(PASSWORD))
    hub.spool.save_mail_settings(MailSettings(account.id, (SENDER,)))
    return hub


@pytest.fixture
def uvloop_hub(tmp_path: Path, tls_files: dict[str, str]) -> Iterator[HubThread]:
    config = hub_config(tmp_path / "uv",
                        smtp=smtp_section(**tls_files, max_message_bytes=2_000_000))
    hub = HubThread(config, uvloop.new_event_loop).start()
    try:
        yield _prepared(hub)
    finally:
        hub.stop()


# uvloop keeps the self-pipe of its first loop open for the process (not ours to close).
@pytest.mark.keeps_process_fds
def test_starttls_auth_and_mail_work_on_uvloop(uvloop_hub: HubThread,
                                               client_tls: ssl.SSLContext) -> None:
    assert type(uvloop_hub.loop).__module__.startswith("uvloop")
    with connect(uvloop_hub) as client:
        client.starttls(context=client_tls)
        client.ehlo("client.example")
        assert client.has_extn("auth")
        client.login("acme", PASSWORD)
        # A large mail crosses many TLS records: the SSL layer under uvloop's transport.
        text = "Server down.\n-- \n" + "disclaimer line\n" * 20_000
        code, reply = send(client, mail(text), [f"27821234567@{DOMAIN}"],
                           sender="anyone@elsewhere.example")
    assert code == 250
    assert [m.text for m in queued(uvloop_hub, reply)] == ["Server down."]


def test_require_tls_refuses_mail_until_starttls(secure_hub: Callable[..., HubThread],
                                                 client_tls: ssl.SSLContext) -> None:
    hub = secure_hub(require_tls=True)
    with connect(hub) as client:
        code, why = client.mail(SENDER)  # even an allowed sender
        assert code == 530 and b"STARTTLS" in why
        client.starttls(context=client_tls)
        client.ehlo("client.example")
        code, reply = send(client, mail(), [f"27821234567@{DOMAIN}"])
    assert code == 250 and len(queued(hub, reply)) == 1


def _login_code(hub: HubThread, context: ssl.SSLContext, password: str) -> int:
    """One AUTH PLAIN attempt (smtplib's login() would try every mechanism in turn)."""
    with connect(hub) as client:
        client.starttls(context=context)
        client.ehlo("client.example")
        client.user, client.password = "acme", password
        try:
            client.auth("PLAIN", client.auth_plain)
        except smtplib.SMTPAuthenticationError as exc:
            return exc.smtp_code
        return 235


def test_failed_auth_is_answered_late_and_capped_per_address(
        secure_hub: Callable[..., HubThread], client_tls: ssl.SSLContext) -> None:
    hub = secure_hub(failed_auth_delay=0.3, auth_failures_per_ip=2)
    started = time.monotonic()
    assert _login_code(hub, client_tls, "wrong") == 535
    assert time.monotonic() - started >= 0.3  # the answer waited for the delay
    assert _login_code(hub, client_tls, "wrong again") == 535
    # The cap is reached: even the right password is not checked from this address.
    assert _login_code(hub, client_tls, PASSWORD) == 454


def test_auth_succeeds_below_the_failure_cap(secure_hub: Callable[..., HubThread],
                                             client_tls: ssl.SSLContext) -> None:
    hub = secure_hub(failed_auth_delay=0, auth_failures_per_ip=2)
    assert _login_code(hub, client_tls, "wrong") == 535
    assert _login_code(hub, client_tls, PASSWORD) == 235


def test_stopping_the_hub_closes_sessions_still_open(secure_hub: Callable[..., HubThread],
                                                     ) -> None:
    hub = secure_hub()
    client = connect(hub)
    try:
        client.ehlo("client.example")
        hub.stop()  # with the session open: no leaked transport, no pending task
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.noop()
    finally:
        client.close()
