"""Explicit FTPS (AUTH TLS) with a trustme certificate: protected login and data work,
and plain-text logins are refused when TLS is required."""

from __future__ import annotations

import ftplib
import io
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme

from tests.ftpdrop import PASSWORD, Drop, make_drop, no_leaked_threads
from tests.hubthread import HubThread

pytestmark = pytest.mark.usefixtures("no_leaked_threads")
_ = no_leaked_threads


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_drop(make_hub: Callable[..., HubThread], ca: trustme.CA, tmp_path: Path) -> Drop:
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(str(keyfile))
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    return make_drop(make_hub, certfile=str(certfile), keyfile=str(keyfile))


def tls_client(drop: Drop, ca: trustme.CA) -> ftplib.FTP_TLS:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    ftp = ftplib.FTP_TLS(context=context)
    ftp.connect("127.0.0.1", drop.port, timeout=10)
    ftp.login(drop.account, PASSWORD)  # sends AUTH TLS first
    ftp.prot_p()
    return ftp


def test_ftps_upload_over_tls_gets_a_result_file(tls_drop: Drop, ca: trustme.CA) -> None:
    ftp = tls_client(tls_drop, ca)
    ftp.storbinary("STOR tls.csv", io.BytesIO(b"to,text\n0821234567,secure\n"))
    assert tls_drop.result("tls.csv")[1][3] == "accepted"
    listing = ftp.nlst("results")
    ftp.quit()
    assert any(name.endswith("tls.result.csv") for name in listing)


def test_ftps_required_refuses_a_plain_text_login(tls_drop: Drop) -> None:
    # pyftpdlib's answer in TLS-required mode, as docs/ftp.md says: 550, not 534.
    with pytest.raises(ftplib.error_perm, match=r"^550 SSL/TLS required"):
        tls_drop.client()
