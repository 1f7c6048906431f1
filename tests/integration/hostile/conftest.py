"""Fixtures of the hostile-input suite: hubs shared by a module's cases (each case ends
by checking that the hub still serves, so a hub broken by one case fails that case),
the leak check over a whole module, module-wide TLS files, and the traps of one case."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.hubthread import HubThread
from tests.integration.conftest import _describe, _new_threads, _open_fds, test_config
from tests.integration.hostile.watch import Traps, traps_at


@pytest.fixture(scope="module", autouse=True)
def no_leaks() -> Iterator[None]:
    """The integration suite's leak check, over the whole module rather than each test: a
    hub shared by a module's cases opens its spool connections and worker threads lazily,
    on the case that first needs them, and closes them when the module's last case ends."""
    threads = {t.ident for t in threading.enumerate()}
    fds = _open_fds()
    yield
    gc.collect()
    deadline = time.monotonic() + 5
    while (_new_threads(threads) or _open_fds() - fds) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _new_threads(threads) == [], "threads left running"
    leaked = {fd: _describe(fd) for fd in _open_fds() - fds}
    assert leaked == {}, f"file descriptors left open: {leaked}"


@contextmanager
def running_hub(data_dir: Path, **sections: dict[str, Any]) -> Iterator[HubThread]:
    hub = HubThread(test_config(data_dir, **sections)).start()
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture(scope="module")
def module_tls(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("tls")
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    return {"certfile": str(certfile), "keyfile": str(keyfile)}


@pytest.fixture
def traps(tmp_path: Path) -> Iterator[Traps]:
    with traps_at(tmp_path) as made:
        yield made
