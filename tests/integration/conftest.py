"""Fixtures for tests that run a real hub in-process: `make_hub(**sections)`, `hubs` (a
list the test starts hubs into, stopped at the end); a test CA with a server certificate
for 127.0.0.1 and a client context trusting it."""

from __future__ import annotations

import gc
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from hub.config import Config, load, with_overrides
from tests.hubthread import HubThread


def test_config(data_dir: Path, **sections: dict[str, Any]) -> Config:
    base = with_overrides(
        load(None, env={}),
        hub={"data_dir": str(data_dir), "node": "test-node"},
        http={"port": 0},
        simulator={"report_delay": 0.05},
        dispatcher={"poll_interval": 0.05, "retry_base": 0.05, "retry_cap": 0.2},
    )
    return with_overrides(base, **sections) if sections else base


@pytest.fixture
def make_hub(tmp_path: Path) -> Iterator[Callable[..., HubThread]]:
    started: list[HubThread] = []

    def make(**sections: dict[str, Any]) -> HubThread:
        hub = HubThread(test_config(tmp_path / f"hub{len(started)}", **sections)).start()
        started.append(hub)
        return hub

    yield make
    for hub in reversed(started):
        hub.stop()


@pytest.fixture
def hubs() -> Iterator[list[HubThread]]:
    """Hubs the test starts itself (one after another on one data directory, say)."""
    started: list[HubThread] = []
    yield started
    for hub in reversed(started):
        hub.stop()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_files(ca: trustme.CA, tmp_path: Path) -> dict[str, str]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    return {"certfile": str(certfile), "keyfile": str(keyfile)}


@pytest.fixture
def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def _open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")} if os.path.isdir(
        "/proc/self/fd") else set()


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every integration test leaves no thread running and no file descriptor open
    beyond what it found (pyftpdlib's own tests check the same after each test)."""
    threads = {t.ident for t in threading.enumerate()}
    fds = _open_fds()
    check_fds = request.node.get_closest_marker("keeps_process_fds") is None
    # What lives now is not this test's doing: the collection below looks only at what
    # the test made (a full collection over the session's heap took 0.1-0.3 s a test).
    gc.freeze()
    yield
    gc.collect()  # sockets and files dropped by the test close here, not later

    def settled() -> bool:
        return not _new_threads(threads) and not (check_fds and _open_fds() - fds)

    deadline = time.monotonic() + 5
    while not settled() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _new_threads(threads) == [], "threads left running"
    if not check_fds:
        return
    leaked = {fd: _describe(fd) for fd in _open_fds() - fds}
    assert leaked == {}, f"file descriptors left open: {leaked}"


def _new_threads(before: set[int | None]) -> list[str]:
    return [t.name for t in threading.enumerate()
            if t.ident not in before and t.is_alive() and not t.daemon]


def _describe(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "?"
