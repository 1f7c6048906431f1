"""Operator actions seen from outside (issue #17), on a real hub with HTTP, FTP and SMTP:
an expired API key is refused by the JSON and XML APIs, and a deleted account's keys,
FTP login, SMTP AUTH and allowed sender are all refused, while its history stays."""

from __future__ import annotations

import ftplib
import smtplib
import ssl
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from hub import accounts, cli
from hub.accounts import hash_password
from hub.clock import utcnow
from hub.mail import MailSettings
from tests.ftpdrop import FTP_DEFAULTS
from tests.hubthread import HubThread
from tests.integration.test_smtp_mail import DOMAIN, PASSWORD, SENDER, connect, smtp_section
from tests.integration.test_xml_api import doc, parse

MESSAGE = {"to": "0821234567", "text": "Hello"}


@pytest.fixture
def hub(make_hub: Callable[..., HubThread], tls_files: dict[str, str]) -> HubThread:
    """Every way in on: HTTP, the FTP drop and the SMTP listener (with STARTTLS); account
    acme with a password and an allowed mail sender."""
    hub = make_hub(ftp=FTP_DEFAULTS, smtp=smtp_section(**tls_files))
    hub.account("acme", credits="10", price="1")
    account = hub.spool.get_account("acme")
    hub.spool.set_password_hash("acme", hash_password(PASSWORD))
    hub.spool.save_mail_settings(MailSettings(account.id, (SENDER,)))
    return hub


def new_key(hub: HubThread) -> str:
    return accounts.create_api_key(hub.spool, accounts.load_secret(hub.config.data_dir),
                                   "acme")


def post(hub: HubThread, key: str, **fields: str) -> httpx.Response:
    return httpx.post(f"{hub.url}/v1/messages", json={**MESSAGE, **fields},
                      headers={"Authorization": f"Bearer {key}"})


def smshub(hub: HubThread, *args: str) -> int:
    """The real CLI on the running hub's spool."""
    config = Path(hub.config.data_dir).parent / "cli.toml"
    config.write_text(f'[hub]\ndata_dir = "{hub.config.data_dir}"\n', "utf-8")
    return cli.main(["--config", str(config), *args])


def test_expired_api_key_gets_401_key_expired_in_json_and_xml_until_its_expiry_moves(
        hub: HubThread) -> None:
    key = new_key(hub)
    key_id = key.split("_")[1]
    hub.spool.set_api_key_expiry("acme", key_id, utcnow() - timedelta(seconds=1))
    r = post(hub, key)
    assert r.status_code == 401 and r.json()["code"] == "key_expired"
    xml = httpx.post(f"{hub.url}/xml", headers={"Authorization": f"Bearer {key}"},
                     content=doc("balanceRequest", ""))
    assert xml.status_code == 401 and parse(xml).get("code") == "key_expired"
    wrong = post(hub, key[:-4] + "AAAA")  # someone without the key learns nothing
    assert wrong.status_code == 401 and wrong.json()["code"] == "unauthorized"
    assert smshub(hub, "account", "expire-key", "acme", key_id, "--never") == 0
    assert post(hub, key).status_code == 202


def test_deleted_account_is_refused_by_api_keys_ftp_and_smtp_and_keeps_its_history(
        hub: HubThread, client_tls: ssl.SSLContext) -> None:
    used, unused = new_key(hub), new_key(hub)
    tomorrow = (utcnow() + timedelta(days=1)).isoformat()
    sent = post(hub, used, send_at=tomorrow)
    assert sent.status_code == 202 and hub.spool.get_account("acme").balance == 9
    assert smshub(hub, "account", "delete", "acme") == 2  # not without --yes
    assert smshub(hub, "account", "delete", "acme", "--yes") == 1  # one is scheduled
    assert smshub(hub, "account", "delete", "acme", "--yes", "--cancel-queued") == 0

    refused = post(hub, unused)
    assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
    # A key the hub verified a moment ago is still in its credential cache: the commit
    # refuses the account all the same, and nothing is stored or charged.
    cached = post(hub, used)
    assert cached.status_code == 422 and cached.json()["code"] == "account_disabled"
    kept = hub.spool.get_message(sent.json()["id"])  # history kept, credit refunded
    assert kept is not None and kept.status.value == "cancelled"
    assert hub.spool.get_account("acme").balance == 10

    assert hub.hub.ftp_port is not None
    with ftplib.FTP() as ftp:
        ftp.connect("127.0.0.1", hub.hub.ftp_port, timeout=10)
        with pytest.raises(ftplib.error_perm, match="530"):
            ftp.login("acme", PASSWORD)

    with connect(hub) as client:
        client.starttls(context=client_tls)
        client.ehlo("client.example")
        client.user, client.password = "acme", PASSWORD
        with pytest.raises(smtplib.SMTPAuthenticationError) as auth:
            client.auth("PLAIN", client.auth_plain)
        assert auth.value.smtp_code == 535
    with connect(hub) as client:
        client.starttls(context=client_tls)
        client.ehlo("client.example")
        code, _ = client.mail(SENDER)  # no longer an allowed sender of any account
        assert code in (530, 550)
        assert client.rcpt(f"27821234567@{DOMAIN}")[0] != 250
