"""Helpers for FTP drop tests: a hub with the FTP drop on, an account with a password,
real ftplib clients, waiting for answer files, and a leaked-thread check."""

from __future__ import annotations

import csv
import ftplib
import io
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hub import accounts
from tests.hubthread import HubThread

PASSWORD = "correct horse battery"
FTP_DEFAULTS: dict[str, Any] = {
    "enabled": True, "port": 0, "failed_login_delay": 0.05, "report_interval": 0.1,
}


@dataclass
class Drop:
    hub: HubThread
    account: str = "acme"

    @property
    def port(self) -> int:
        assert self.hub.hub.ftp_port is not None
        return self.hub.hub.ftp_port

    @property
    def home(self) -> Path:
        return self.hub.config.data_dir.resolve() / "ftp" / self.account

    def client(self, password: str = PASSWORD, user: str | None = None) -> ftplib.FTP:
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", self.port, timeout=10)
        try:
            ftp.login(user or self.account, password)
        except BaseException:
            ftp.close()
            raise
        return ftp

    def upload(self, name: str, data: bytes | str, ftp: ftplib.FTP | None = None) -> None:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        own = ftp is None
        ftp = ftp or self.client()
        try:
            ftp.storbinary(f"STOR {name}", io.BytesIO(raw))
        finally:
            if own:
                ftp.quit()

    def result(self, name: str, timeout: float = 20) -> list[list[str]]:
        return read_csv(wait_for(self.home / "results" / f"{stem(name)}.result.csv", timeout))

    def report(self, name: str) -> Path:
        return self.home / "reports" / f"{stem(name)}.report.csv"


def stem(name: str) -> str:
    return name.rsplit(".", 1)[0]


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def wait_for(path: Path, timeout: float = 20, check: Callable[[Path], bool] | None = None
             ) -> Path:
    """Poll for a file the hub writes in the background (no event to await over FTP)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and (check is None or check(path)):
            return path
        time.sleep(0.02)
    raise AssertionError(f"{path} did not appear (or never passed the check) in {timeout} s")


def make_drop(make_hub: Callable[..., HubThread], credits: str = "1000",
              **ftp: Any) -> Drop:
    hub = make_hub(ftp={**FTP_DEFAULTS, **ftp})
    hub.account("acme", credits=credits)
    hub.spool.set_password_hash("acme", accounts.hash_password(PASSWORD))
    return Drop(hub)


@pytest.fixture
def no_leaked_threads() -> Iterator[None]:
    before = {t.ident for t in threading.enumerate()}
    yield
    deadline = time.monotonic() + 5
    while True:
        leaked = [t.name for t in threading.enumerate()
                  if t.ident not in before and t.is_alive() and not t.daemon]
        leaked += [t.name for t in threading.enumerate()
                   if t.ident not in before and t.name.startswith(("ftp-drop", "hub"))]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not leaked, f"threads left running: {leaked}"
