"""What every hostile-input test checks besides the protocol's own answer: nothing was
opened on the attacker's behalf (Traps), memory stayed bounded (Peak), and the hub still
serves afterwards (serves_http).

Traps are bait that would really fail if used: a FIFO (opening it for reading blocks until
a writer appears, so a still-blocked reader is visible afterwards), a listening socket
that must have no connection waiting, and a Python audit hook that records any `open`,
`os.listdir`-like or `socket.connect` naming either. Peak reads the process's resident
high-water mark (VmHWM, reset through /proc/self/clear_refs), which counts what C
libraries (libxml2, the TLS layer) allocate too, not only Python objects."""

from __future__ import annotations

import errno
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.hubthread import HubThread

MIB = 1 << 20
# What one hostile request may cost the whole process at its peak. The hub's own limits
# (1 MiB XML, 10 MiB mail, 16 KiB CSV lines) keep honest work far below it; what breaks
# it is a copy per element, entity or header that grows with the attacker's input.
MEMORY_BUDGET = 64 * MIB
# /healthz on a hub that is not stalled answers in milliseconds.
HEALTHZ_WITHIN = 1.0


@dataclass
class Traps:
    """A FIFO and a listening socket an attack names; `seen` is what the audit hook saw."""

    fifo: Path
    listener: socket.socket
    seen: list[tuple[str, str]] = field(default_factory=list)

    @property
    def port(self) -> int:
        port: int = self.listener.getsockname()[1]
        return port

    @property
    def host(self) -> str:
        host: str = self.listener.getsockname()[0]
        return host

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def assert_untouched(self) -> None:
        assert not self.seen, f"opened on the attacker's behalf: {self.seen}"
        try:  # succeeds only if some reader is blocked opening the FIFO
            fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            assert exc.errno == errno.ENXIO
        else:
            os.close(fd)
            pytest.fail("the hub opened the FIFO named by the attacker")
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return
        conn.close()
        pytest.fail("the hub connected to the address named by the attacker")


_TRAPS: list[Traps] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _TRAPS or event not in ("open", "socket.connect", "os.listdir", "os.scandir"):
        return
    traps = _TRAPS[-1]
    target = str(args[1] if event == "socket.connect" else args[0])
    if event == "socket.connect" or "://" in target:  # an address, a URL naming the FIFO
        named = str(traps.fifo) in target or f", {traps.port})" in target
    else:  # a path: the FIFO itself, not a path inside the FTP home that spells it out
        named = os.path.realpath(target) == str(traps.fifo)
    if named:
        traps.seen.append((event, target))


sys.addaudithook(_audit)  # cannot be removed; it only looks at the running test's traps


@contextmanager
def traps_at(folder: Path, host: str = "127.0.0.1") -> Iterator[Traps]:
    fifo = folder.resolve() / "secret"
    os.mkfifo(fifo)
    listener = socket.socket()
    listener.bind((host, 0))
    listener.listen(8)
    listener.setblocking(False)
    made = Traps(fifo, listener)
    _TRAPS.append(made)
    try:
        yield made
    finally:
        _TRAPS.remove(made)
        listener.close()


def _status_kib(field_name: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field_name} in /proc/self/status")


class Peak:
    """The resident-memory high-water mark over a block, above what was resident before."""

    def __init__(self) -> None:
        self.grew = 0

    def __enter__(self) -> Peak:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")  # resets VmHWM to the current resident size
        self._before = _status_kib("VmRSS") * 1024
        return self

    def __exit__(self, *exc: object) -> None:
        self.grew = _status_kib("VmHWM") * 1024 - self._before

    def assert_within(self, budget: int = MEMORY_BUDGET) -> None:
        assert self.grew < budget, (f"memory grew {self.grew / MIB:.1f} MiB at its peak; "
                                    f"the bound is {budget / MIB:.0f} MiB")


def healthz_answers(hub: HubThread) -> None:
    """/healthz answers 200 at once: the event loop is not stalled."""
    started = time.monotonic()
    r = httpx.get(f"{hub.url}/healthz", timeout=5)
    assert r.status_code == 200
    assert time.monotonic() - started < HEALTHZ_WITHIN


def serves_http(hub: HubThread, key: str) -> None:
    """The hub still answers quickly and still takes a normal message."""
    healthz_answers(hub)
    r = httpx.post(f"{hub.url}/v1/messages", timeout=10,
                   json={"to": "0821234567", "text": "still here"},
                   headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 202, r.text
