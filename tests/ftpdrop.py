"""Helpers for FTP drop tests: a hub with the FTP drop on, an account with a password,
real ftplib clients, waiting for answer files, a spool that fails on cue, and a
leaked-thread check."""

from __future__ import annotations

import csv
import ftplib
import io
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hub import accounts, cli
from hub.errors import TemporaryFailure
from hub.model import NewMessage
from hub.ports import Committed, Spool
from tests.hubthread import HubThread
from tests.polling import eventually

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
    eventually(lambda: path.exists() and (check is None or check(path)), timeout,
               what=f"{path} appearing (and passing the check)")
    return path


def make_drop(make_hub: Callable[..., HubThread], credits: str = "1000",
              **ftp: Any) -> Drop:
    hub = make_hub(ftp={**FTP_DEFAULTS, **ftp})
    hub.account("acme", credits=credits)
    hub.spool.set_password_hash("acme", accounts.hash_password(PASSWORD))
    return Drop(hub)


def cli_batch(drop: Drop, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    config = drop.hub.config.data_dir.parent / "cli.toml"
    config.write_text(f'[hub]\ndata_dir = "{drop.hub.config.data_dir}"\n', "utf-8")
    assert cli.main(["--config", str(config), "batch", *args]) == 0
    return capsys.readouterr().out


def csv_of(rows: int) -> str:
    return "to,text\n" + "".join(f"08{2000000 + i:08d},row {i}\n" for i in range(rows))


def unavailable() -> Exception:
    return TemporaryFailure("spool unavailable: disk I/O error (injected)")


def refused_for_good() -> Exception:
    """An error that is not temporary: the group would fail however often it is tried."""
    return RuntimeError("the spool refused the group (injected)")


class FailingSpool:
    """The spool on a disk that stops working: `accept` raises `error()` (a
    TemporaryFailure unless told) on the calls numbered in `failing` (from 1), and on
    every call from `fail_from` on."""

    def __init__(self, spool: Spool, failing: Sequence[int] = (), fail_from: int = 0,
                 error: Callable[[], Exception] = unavailable) -> None:
        self._spool = spool
        self._failing = set(failing)
        self._fail_from = fail_from
        self._error = error
        self.calls = 0

    def accept(self, group: Sequence[NewMessage]) -> list[Committed]:
        self.calls += 1
        if self.calls in self._failing or 0 < self._fail_from <= self.calls:
            raise self._error()
        return self._spool.accept(group)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._spool, name)


def install(drop: Drop, spool: FailingSpool) -> None:
    assert drop.hub.hub.services is not None
    drop.hub.hub.services.runner._spool = spool  # the seam, swapped under the running hub


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
