"""The same-host guard of a SQLite spool: one node name per database file and at most one
dispatching process, held with flock(2) on small files beside the database for the life
of the process (the kernel lets go when it exits, however it exits)."""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

from hub.nodes import NodeRefused

log = logging.getLogger(__name__)


class NodeLock:
    """The lock files this process holds open (closing them lets the locks go)."""

    def __init__(self, fds: list[int]) -> None:
        self._fds = fds

    def release(self) -> None:
        while self._fds:
            os.close(self._fds.pop())


def sqlite_file(url: str) -> Path | None:
    """The database file of a sqlite:/// URL; None for PostgreSQL and :memory:."""
    scheme, _, rest = url.partition("://")
    if not scheme.startswith("sqlite") or not rest.startswith("/"):
        return None
    name = rest[1:].split("?", 1)[0]
    return None if name in ("", ":memory:") else Path(name).absolute()


def lock_sqlite(url: str, node: str, dispatching: bool) -> NodeLock | None:
    """Hold the spool file for node `node`, or raise NodeRefused with the reason.

    `<db>.node` is held shared by every process of the node and names it; `<db>.dispatch`
    is held alone by the one process that claims messages (a second would release the
    first's leases at its start, and both would claim under one name). `<db>.lock` is
    held only while checking, so that two processes starting at once cannot both find
    the file free. None when the spool is not a SQLite file."""
    db = sqlite_file(url)
    if db is None:
        return None
    held: list[int] = []
    try:
        guard = _open(db, ".lock")
    except OSError as exc:  # a read-only data directory: start, and answer 503 (P2)
        log.warning("cannot hold the SQLite spool's node lock (%s); only the heartbeats "
                    "guard against a second node", exc, extra={"action": "node-lock"})
        return NodeLock([])
    try:
        fcntl.flock(guard, fcntl.LOCK_EX)
        held.append(_hold_name(db, node))
        if dispatching:
            held.append(_hold_dispatch(db, node))
    except BaseException:
        NodeLock(held).release()
        raise
    finally:
        os.close(guard)  # lets the guard go
    return NodeLock(held)


def _open(db: Path, suffix: str) -> int:
    return os.open(db.with_name(db.name + suffix), os.O_RDWR | os.O_CREAT, 0o600)


def _hold_name(db: Path, node: str) -> int:
    fd = _open(db, ".node")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # held shared by the running node's processes
        owner = os.pread(fd, 1024, 0).decode("utf-8", "replace")
        if owner != node:
            os.close(fd)
            raise NodeRefused(
                f"the SQLite spool {db} is in use by node '{owner}' (another `smshub serve` "
                f"on this host), and this node is '{node}': a SQLite spool serves one node. "
                "Give this process the same [hub] node to split one node into ingress and "
                "dispatch processes, or use PostgreSQL for several nodes (docs/nodes.md)"
            ) from None
    else:  # nobody holds it: name it ours
        os.ftruncate(fd, 0)
        os.pwrite(fd, node.encode("utf-8"), 0)
    # Shared from now on, so that this node's other processes can join; the guard keeps
    # anyone from slipping in while the exclusive lock turns shared.
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def _hold_dispatch(db: Path, node: str) -> int:
    fd = _open(db, ".dispatch")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise NodeRefused(
            f"the SQLite spool {db} already has a dispatching process of node '{node}' "
            "(role all or dispatch) on this host: start this one with --role ingress, or "
            "stop the other first (docs/nodes.md)") from None
    return fd
