"""Hub nodes: what each running `smshub serve` says of itself in the spool (name, role,
process, heartbeat), the task that keeps saying it, and the rule that a SQLite spool
serves one node."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import metadata
from typing import Protocol

from hub.clock import Clock, utcnow
from hub.errors import HubError, TemporaryFailure
from hub.faultlog import FaultLog
from hub.spoolcall import SpoolThreads

log = logging.getLogger(__name__)

ROLES = ("all", "ingress", "dispatch")
# A node is stale once it has missed this many heartbeats in a row.
MISSED_BEATS = 3


class NodeRefused(HubError):
    """This node may not start on this spool; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """One running `smshub serve` process, as it announces itself."""
    name: str
    role: str
    pid: int
    host: str
    started_at: datetime
    version: str


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """A node as the spool last heard of it, with the work it holds under lease."""
    info: NodeInfo
    last_seen: datetime
    messages_leased: int = 0  # messages in `sending` under its name
    outbox_leased: int = 0  # outbox items whose lease token names it
    batches_leased: int = 0  # FTP batches leased to it (read, or their report followed)


class NodeStore(Protocol):
    """The spool's table of running nodes (one row per node name and role)."""

    def beat(self, info: NodeInfo, now: datetime) -> None:
        """Say that this node is alive now (the row is created or replaced)."""
        ...

    def leave(self, info: NodeInfo) -> None:
        """Remove this process's row: it stopped cleanly."""
        ...

    def list_nodes(self) -> list[NodeRecord]: ...


def this_node(name: str, role: str, now: datetime) -> NodeInfo:
    try:
        version = metadata.version("smshub")
    except metadata.PackageNotFoundError:  # run from a source tree, not installed
        version = "unknown"
    return NodeInfo(name, role, os.getpid(), socket.gethostname(), now, version)


def stale_after(interval: float) -> timedelta:
    return timedelta(seconds=interval * MISSED_BEATS)


def is_live(record: NodeRecord, now: datetime, interval: float) -> bool:
    return now - record.last_seen < stale_after(interval)


def check_single_node(records: list[NodeRecord], me: NodeInfo, now: datetime,
                      interval: float) -> None:
    """A SQLite spool serves one node name: refuse to start while another name is live
    on it. On this host the file lock (hub.nodelock) has already decided, and rightly
    so for a node that died (its row looks live for a few more seconds); a fresh row
    from another host means the file is shared over a network file system, where
    SQLite's locking is not to be trusted."""
    for record in records:
        other = record.info
        if other.name == me.name or other.host == me.host:
            continue
        if is_live(record, now, interval):
            age = (now - record.last_seen).total_seconds()
            raise NodeRefused(
                f"the SQLite spool is in use by node '{other.name}' on host {other.host} "
                f"(pid {other.pid}, heard from {age:.0f} s ago): a SQLite spool serves one "
                "node on one host; use PostgreSQL for several nodes (docs/nodes.md)")


def check_one_dispatcher(records: list[NodeRecord], me: NodeInfo, now: datetime,
                         interval: float) -> None:
    """One dispatching process per node name on any spool: a dispatcher releases its
    name's leases when it starts, so a second one would hand the first's messages out
    again (P5). A row of a process on this host that is gone does not count."""
    if me.role == "ingress":
        return
    for record in records:
        other = record.info
        if (other.name != me.name or other.role == "ingress"
                or (other.host, other.pid) == (me.host, me.pid)
                or not is_live(record, now, interval)
                or (other.host == me.host and not _running(other.pid))):
            continue
        wait = (stale_after(interval) - (now - record.last_seen)).total_seconds()
        raise NodeRefused(
            f"node '{me.name}' already has a dispatching process (role {other.role}, pid "
            f"{other.pid} on {other.host}): give this node its own [hub] node name, or, if "
            f"that process is gone, start again in {max(wait, 0):.0f} s (docs/nodes.md)")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Dead but not reaped: the dispatch child of a killed split serve (hub.supervisor) is
    reaped by init, which a container may never do; it holds nothing any more."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] == "Z"
    except (OSError, IndexError):
        return False


class Heartbeat:
    """Writes this node's row every `interval` seconds, from start to stop. At start it
    first refuses a second dispatching process of this node name and, with
    `single_node` (SQLite), a spool another node uses."""

    name = "heartbeat"

    def __init__(self, runner: SpoolThreads[NodeStore], info: NodeInfo, interval: float,
                 *, single_node: bool = False, clock: Clock = utcnow) -> None:
        self._runner = runner
        self.info = info
        self._interval = interval
        self._single_node = single_node
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._faults = FaultLog(log, "heartbeat not written", "heartbeat")

    async def start(self) -> None:
        spool, now = self._runner.spool, self._clock()
        records = await self._runner.call(spool.list_nodes)
        check_one_dispatcher(records, self.info, now, self._interval)
        if self._single_node:
            check_single_node(records, self.info, now, self._interval)
        await self._write(now)  # a spool that cannot take it now still lets the node start
        self._task = asyncio.get_running_loop().create_task(self._every_interval())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        with contextlib.suppress(TemporaryFailure):  # then it goes stale instead
            await self._runner.call(self._runner.spool.leave, self.info)

    async def _every_interval(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self._write(self._clock())

    async def _write(self, now: datetime) -> None:
        try:
            await self._runner.call(self._runner.spool.beat, self.info, now)
        except TemporaryFailure as exc:
            self._faults.failed(str(exc))
            return
        self._faults.cleared()
