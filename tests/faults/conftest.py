"""Fixtures for the fault tests: a hub in-process with every ingress on (REST, XML, SMTP,
FTP), an account that may use each, and small file systems mounted for one test
(tmpfs, so a full disk is real ENOSPC; root only, skipped with the reason otherwise)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.accounts import hash_password
from hub.config import Config, load, with_overrides
from hub.mail import MailSettings
from tests.e2e.test_cli_and_crash import Server
from tests.faults.probes import DOMAIN, PASSWORD, SENDER, Probes
from tests.hubthread import HubThread

MakeHub = Callable[..., HubThread]


def fault_config(data_dir: Path, **sections: dict[str, Any]) -> Config:
    base = with_overrides(
        load(None, env={}),
        hub={"data_dir": str(data_dir), "node": "faults"},
        http={"port": 0},
        simulator={"report_delay": 0.05},
        dispatcher={"poll_interval": 0.05, "retry_base": 0.05, "retry_cap": 0.2},
        # Every periodic part runs often, so one that logs a fault at each run shows.
        maintenance={"interval": 0.1},
        outbox={"poll_interval": 0.1},
        smtp={"enabled": True, "port": 0, "domains": [DOMAIN],
              "allow_plaintext_auth_on_loopback": True, "final_receipt_interval": 0.1},
        ftp={"enabled": True, "port": 0, "failed_login_delay": 0.05, "report_interval": 0.1,
             "group_retries": 1, "group_retry_delay": 0.1},
    )
    return with_overrides(base, **sections) if sections else base


@pytest.fixture
def make_hub(tmp_path: Path) -> Iterator[MakeHub]:
    """make_hub(data_dir=None, **sections): a started hub, stopped after the test."""
    started: list[HubThread] = []

    def make(data_dir: Path | None = None, **sections: dict[str, Any]) -> HubThread:
        where = data_dir or tmp_path / f"hub{len(started)}"
        hub = HubThread(fault_config(where, **sections)).start()
        started.append(hub)
        return hub

    yield make
    for hub in reversed(started):
        hub.stop()


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    """`smshub serve` processes the test starts, killed (if still running) at the end."""
    started: list[Server] = []
    yield started
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(10)
        if server.proc.stderr is not None:
            server.proc.stderr.close()


def open_account(hub: HubThread) -> Probes:
    """Account acme, usable over every ingress: an API key, a password (FTP, XML) and
    SENDER allowed to mail SMS. The probes that speak each protocol to it."""
    key = hub.account("acme", credits="100000")
    hub.spool.set_password_hash("acme", hash_password(PASSWORD))
    account = hub.spool.get_account("acme")
    assert account is not None
    hub.spool.save_mail_settings(MailSettings(account.id, (SENDER,)))
    return Probes(hub, key)


def assert_said_not_dumped(caplog: pytest.LogCaptureFixture, most: int = 6) -> None:
    """A known fault is said, not dumped: no traceback, and a few warning lines per
    part of the hub (a new one when the words change: "refused", then "not yet
    accepting connections"), however many polls, sweeps and requests failed."""
    assert not [r.getMessage() for r in caplog.records if r.exc_info]
    said = Counter(getattr(r, "action", r.name) for r in caplog.records
                   if r.levelno >= logging.WARNING)
    assert not said or max(said.values()) <= most, said


# --- file systems mounted for one test -------------------------------------------------


def cannot_mount() -> str | None:
    """Why a tmpfs cannot be mounted here, or None."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    if shutil.which("mount") is None or shutil.which("umount") is None:
        return "mount/umount are not installed"
    return None


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[Path, str], Path]]:
    """tmpfs(dir, size): a tmpfs of `size` ("16m") mounted on `dir` (made if need be),
    unmounted after the test even if the hub still holds files in it (lazily)."""
    reason = cannot_mount()
    if reason:
        pytest.skip(reason)
    mounted: list[Path] = []

    def mount(where: Path, size: str) -> Path:
        where.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700",
                               "tmpfs", str(where)], check=False, capture_output=True,
                              text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


class Ballast:
    """Fills a file system to the last byte (ENOSPC) with one file, and frees it."""

    def __init__(self, where: Path) -> None:
        self.path = where / ".ballast"

    def fill(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for chunk in (b"\0" * (1 << 20), b"\0" * 4096, b"\0"):  # then to the last byte
                try:
                    while os.write(fd, chunk):
                        pass
                except OSError:
                    pass
        finally:
            os.close(fd)
        free = shutil.disk_usage(self.path.parent).free
        assert free == 0, f"{free} bytes still free after the ballast"

    def free(self, leave: int = 0) -> None:
        """Remove the ballast, or with `leave`, only enough of it to leave that many
        bytes free."""
        if not leave:
            self.path.unlink(missing_ok=True)
            return
        size = self.path.stat().st_size
        os.truncate(self.path, max(0, size - leave))
