"""A data directory that turns read-only under a running hub: readiness fails and says
why, the dispatcher says so once (not at every poll) and once when it recovers, and an FTP
login whose home cannot be made is told so.

Tests run as root, whom file modes do not stop, and an immutable (chattr +i) SQLite file
crashes the process through its shared-memory map. So the spool is made read-only the way
SQLite itself refuses writes: the engine of a second spool on the same file, whose
connections set `PRAGMA query_only`, swapped in under the running hub. Every write then fails inside
SQLite with the very error a read-only file gives ("attempt to write a readonly
database"), while reads go on. The FTP area is made immutable with chattr (mkdir fails
with EPERM even for root), where chattr works."""

from __future__ import annotations

import ftplib
import logging
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from spool import open_spool
from spool.store import SqlSpool
from tests.ftpdrop import PASSWORD, Drop, make_drop
from tests.hubthread import HubThread
from tests.polling import eventually

MakeHub = Callable[..., HubThread]


def read_only_spool(url: str) -> SqlSpool:
    spool = open_spool(url)

    @event.listens_for(spool.db.engine, "connect")
    def _read_only(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA query_only = ON")

    return spool


class ReadOnly:
    """Turns the hub's spool read-only (and back) under the running hub: its database
    handle is pointed at the read-only engine, so every part holding the spool sees it."""

    def __init__(self, hub: HubThread) -> None:
        self._db = hub.spool.db  # type: ignore[attr-defined]
        self._real = (self._db.engine, self._db._reader)
        self._ro = read_only_spool(hub.config.spool_url)

    def on(self) -> None:
        self._db.engine, self._db._reader = self._ro.db.engine, self._ro.db._reader

    def off(self) -> None:
        self._db.engine, self._db._reader = self._real

    def close(self) -> None:
        self.off()
        self._ro.close()


@pytest.fixture
def hub(make_hub: MakeHub) -> HubThread:
    return make_hub()


@pytest.fixture
def read_only(hub: HubThread) -> Iterator[ReadOnly]:
    switch = ReadOnly(hub)
    yield switch
    switch.close()


def records(caplog: pytest.LogCaptureFixture, action: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "action", None) == action]


def test_readyz_fails_while_the_spool_cannot_be_written_and_logs_it_once(
        hub: HubThread, read_only: ReadOnly, caplog: pytest.LogCaptureFixture) -> None:
    with httpx.Client(base_url=hub.url) as client:
        assert client.get("/readyz").status_code == 200
        read_only.on()
        for _ in range(3):
            r = client.get("/readyz")
            assert r.status_code == 503
            assert r.json() == {"status": "unavailable",
                                "reason": "the spool cannot be written"}
        [said] = records(caplog, "readyz")
        assert "readonly database" in said.getMessage()
        read_only.off()
        assert client.get("/readyz").status_code == 200
    assert "recovered" in records(caplog, "readyz")[-1].getMessage()


def test_dispatcher_says_once_that_claims_fail_and_once_that_they_recovered(
        hub: HubThread, read_only: ReadOnly, caplog: pytest.LogCaptureFixture) -> None:
    read_only.on()  # the test config polls every 50 ms: 20 failed claims a second
    eventually(lambda: records(caplog, "claim"), 5, what="the first failed claim logged")
    time.sleep(0.5)
    [said] = records(caplog, "claim")
    assert said.levelno == logging.WARNING and "readonly database" in said.getMessage()
    read_only.off()
    eventually(lambda: len(records(caplog, "claim")) == 2, 5, what="the recovery logged")
    assert "recovered" in records(caplog, "claim")[-1].getMessage()


@pytest.fixture
def immutable_ftp_area(make_hub: MakeHub) -> Iterator[Drop]:
    drop = make_drop(make_hub)
    root = drop.home.parent
    if shutil.which("chattr") is None or subprocess.run(
            ["chattr", "+i", str(root)], check=False, capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        yield drop
    finally:
        subprocess.run(["chattr", "-i", str(root)], check=True)


def test_ftp_login_whose_home_cannot_be_made_is_told_why(
        immutable_ftp_area: Drop, caplog: pytest.LogCaptureFixture) -> None:
    drop = immutable_ftp_area
    for _ in range(2):
        with pytest.raises(ftplib.error_temp, match=r"^421 .*cannot write its FTP area"):
            drop.client()
    [said] = records(caplog, "ftp-home")  # said once, not once per login
    assert "Operation not permitted" in said.getMessage()
    assert not any(r.exc_info for r in caplog.records)  # no traceback for a known fault
    subprocess.run(["chattr", "-i", str(drop.home.parent)], check=True)
    drop.client(PASSWORD).quit()  # recovered without a restart
    assert Path(drop.home / "results").is_dir()
