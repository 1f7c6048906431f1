"""`smshub serve` of role all as two processes (`[hub] processes`): this one runs the
listeners and intake (role ingress), a child it starts runs the dispatch side (role
dispatch), so that intake and dispatch do not share one interpreter lock (docs/nodes.md).
A pipe between them wakes the dispatcher at each commit and tells the child its parent
is gone; another brings the child's dispatch figures (carriers, counters) every second
for the parent's /metrics; the child stops with its parent and the parent with its
child."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from hub import app
from hub.config import Config
from hub.metrics import Metrics
from hub.nodelock import lock_sqlite, sqlite_file
from hub.nodes import NodeRefused

log = logging.getLogger(__name__)

LoopFactory = Callable[[], asyncio.AbstractEventLoop] | None
# How long a dispatch child waits for the dispatch lock that a dying predecessor (the
# child of a parent killed a moment ago) may still hold.
LOCK_WAIT = 10.0
# How often the child sends its dispatch figures to the parent's /metrics.
FIGURES_INTERVAL = 1.0
GO = b"\1"  # the first byte on the pipe: the parent has started, the spool is ready


def process_count(config: Config, cpus: int | None = None) -> int:
    """1 or 2: how many processes `smshub serve` runs for this configuration."""
    if config.hub.role != "all" or not config.dispatcher.enabled:
        return 1  # nothing to split: the dispatch side would only idle
    if config.spool_url.startswith("sqlite") and sqlite_file(config.spool_url) is None:
        return 1  # an in-memory database cannot be shared between processes
    if config.hub.processes:
        return config.hub.processes
    cpus = cpus if cpus is not None else len(os.sched_getaffinity(0))
    return 2 if cpus > 1 else 1


def serve_two(config_file: Path | None, config: Config, loop_factory: LoopFactory) -> int:
    """Run this node as ingress here and dispatch in a child, until signalled; the exit
    status is 1 if the child ended on its own (a process manager restarts the pair)."""
    ingress = replace(config, hub=replace(config.hub, role="ingress"))
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(_parent(config_file, ingress))


async def _parent(config_file: Path | None, config: Config) -> int:
    hub = app.Hub(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # The child starts at once, so that its imports overlap this process's start, but
    # opens the spool only at the go below: the schema is created (if need be) here
    # first, so that two processes never race to create it.
    read_end, write_end = os.pipe()
    figures_in, figures_out = os.pipe()
    try:
        child = _start_child(config_file, read_end, figures_out)
    finally:
        os.close(read_end)
        os.close(figures_out)
    try:
        # The node's name, held by the dying child of a killed predecessor (a genuine
        # refusal comes after these few seconds, from the start itself).
        with contextlib.suppress(NodeRefused):
            await asyncio.to_thread(_wait_for_lock, config, dispatching=False, seconds=3.0)
        await hub.start()
    except BaseException:
        os.close(write_end)  # end of file before the go: the child exits at once
        os.close(figures_in)
        await asyncio.to_thread(child.wait)
        raise
    with contextlib.suppress(BrokenPipeError):  # a child already gone is noticed below
        os.write(write_end, GO)
    os.set_blocking(write_end, False)
    assert hub.services is not None
    hub.services.intake.on_commit = lambda: _wake(write_end)
    _receive_figures(loop, figures_in, hub.services.metrics)
    app.settle_gc()
    ended = asyncio.ensure_future(asyncio.to_thread(child.wait))
    signalled = asyncio.ensure_future(stop.wait())
    await asyncio.wait((ended, signalled), return_when=asyncio.FIRST_COMPLETED)
    code = 0
    if ended.done() and not stop.is_set():
        log.error(
            "the dispatch process (pid %d) ended with status %s; stopping this node",
            child.pid,
            child.returncode,
            extra={"action": "stop"},
        )
        code = 1
    else:
        log.info("stopping on signal", extra={"action": "stop"})
    signalled.cancel()
    try:
        await app.stop_within(hub, config.hub.stop_timeout)
    finally:
        await _stop_child(child, ended, config.hub.stop_timeout)
        os.close(write_end)
        loop.remove_reader(figures_in)
        os.close(figures_in)
    return code


def _start_child(config_file: Path | None, wake_fd: int,
                 figures_fd: int) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "hub"]
    if config_file is not None:
        argv += ["--config", str(config_file)]
    argv += ["serve", "--role", "dispatch", "--wake-fd", str(wake_fd),
             "--figures-fd", str(figures_fd)]
    # Its listeners stay off: this process has them, on the same ports.
    env = {**os.environ, "SMSHUB_HTTP__ENABLED": "false"}
    child = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        argv, env=env, pass_fds=(wake_fd, figures_fd), stdin=subprocess.DEVNULL
    )
    log.info("dispatch process started (pid %d)", child.pid, extra={"action": "start"})
    return child


def _receive_figures(loop: asyncio.AbstractEventLoop, fd: int, metrics: Metrics) -> None:
    """Serve the child's dispatch figures (one JSON line a second) as this process's."""
    os.set_blocking(fd, False)
    pending = bytearray()

    def readable() -> None:
        try:
            data = os.read(fd, 1 << 20)
        except BlockingIOError:
            return
        if not data:  # the child is gone: its end is noticed by the wait on it
            loop.remove_reader(fd)
            return
        pending.extend(data)
        *lines, rest = bytes(pending).split(b"\n")
        pending[:] = rest
        if lines:
            with contextlib.suppress(ValueError):
                metrics.absorb(json.loads(lines[-1]))

    loop.add_reader(fd, readable)


async def _send_figures(fd: int, metrics: Metrics) -> None:
    """The child's side: its figures, a line a second, until it stops."""
    while True:
        line = json.dumps(metrics.export(), separators=(",", ":")).encode() + b"\n"
        with contextlib.suppress(BlockingIOError, BrokenPipeError):
            os.write(fd, line)  # a full pipe: the parent reads the next one
        await asyncio.sleep(FIGURES_INTERVAL)


def _wake(fd: int) -> None:
    # One byte per commit; a full pipe already holds a wake-up, a closed one a child
    # that is gone (the parent notices that separately).
    with contextlib.suppress(BlockingIOError, BrokenPipeError):
        os.write(fd, b"\0")


async def _stop_child(
    child: subprocess.Popen[bytes], ended: asyncio.Future[int], timeout: float
) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(timeout + 5):
            await asyncio.shield(ended)
    except TimeoutError:
        log.error(
            "the dispatch process (pid %d) did not stop; killing it",
            child.pid,
            extra={"action": "stop-timeout"},
        )
        child.kill()
        await ended


# --- the child ------------------------------------------------------------------------


def serve_child(config: Config, wake_fd: int, loop_factory: LoopFactory,
                figures_fd: int | None = None) -> int:
    """The dispatch process of a split node: dies with its parent, wakes on its pipe,
    sends its figures on the other."""
    _die_with_parent()
    if os.read(wake_fd, 1) != GO:
        return 1  # the parent did not start (it says why) or is gone
    _wait_for_lock(config, dispatching=True, seconds=LOCK_WAIT)
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(_child(config, wake_fd, figures_fd))
    return 0


async def _child(config: Config, wake_fd: int, figures_fd: int | None) -> None:
    hub = app.Hub(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await hub.start()
    assert hub.services is not None
    wake = hub.services.dispatcher.wake
    os.set_blocking(wake_fd, False)

    def readable() -> None:
        try:
            data = os.read(wake_fd, 65536)
        except BlockingIOError:
            return
        if data:
            wake()
            return
        # End of file: the parent is gone, however it ended. Exit as it did, at once:
        # everything acknowledged is committed, and leases are recovered at the next
        # start, as after a crash of a single process.
        log.warning("the ingress process is gone; exiting", extra={"action": "stop"})
        logging.shutdown()
        os._exit(3)

    loop.add_reader(wake_fd, readable)
    sender = None
    if figures_fd is not None:
        os.set_blocking(figures_fd, False)
        sender = asyncio.ensure_future(_send_figures(figures_fd, hub.services.metrics))
    app.settle_gc()
    try:
        await stop.wait()
        log.info("stopping on signal", extra={"action": "stop"})
    finally:
        if sender is not None:
            sender.cancel()
        loop.remove_reader(wake_fd)
        await app.stop_within(hub, config.hub.stop_timeout)


def _die_with_parent() -> None:
    """Linux: the kernel sends SIGKILL to this process when its parent dies."""
    with contextlib.suppress(Exception):
        import ctypes  # noqa: PLC0415 - Linux only, and only in a split node's child

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _wait_for_lock(config: Config, *, dispatching: bool, seconds: float) -> None:
    """A parent killed a moment ago takes its child with it, but the child may not have
    let its locks go yet when the next start begins: wait a little for them."""
    db = sqlite_file(config.spool_url)
    if db is None or not db.parent.is_dir():
        return  # PostgreSQL (no lock files), or a first start: nothing to wait for
    deadline = time.monotonic() + seconds
    while True:
        try:
            held = lock_sqlite(config.spool_url, config.node, dispatching=dispatching)
        except NodeRefused:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.1)
            continue
        if held is not None:
            held.release()
        return
