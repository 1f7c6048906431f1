"""The SQLite spool's file locks (hub/nodelock.py): processes of one node share the file,
one of them dispatches, another node name is refused until the node's processes end."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.nodelock import lock_sqlite
from hub.nodes import NodeRefused


def test_one_node_name_and_one_dispatcher_per_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'spool.db'}"
    dispatch = lock_sqlite(url, "a", dispatching=True)
    ingress = lock_sqlite(url, "a", dispatching=False)
    assert dispatch is not None and ingress is not None
    with pytest.raises(NodeRefused, match=r"in use by node 'a'.*this node is 'b'"):
        lock_sqlite(url, "b", dispatching=False)
    with pytest.raises(NodeRefused, match="already has a dispatching process of node 'a'"):
        lock_sqlite(url, "a", dispatching=True)
    dispatch.release()
    with pytest.raises(NodeRefused):  # the ingress process still holds the name
        lock_sqlite(url, "b", dispatching=True)
    ingress.release()
    other = lock_sqlite(url, "b", dispatching=True)  # the node has gone: the file is free
    assert other is not None
    other.release()


def test_postgresql_and_memory_spools_take_no_file_lock() -> None:
    assert lock_sqlite("postgresql://u@h/db", "a", dispatching=True) is None
    assert lock_sqlite("sqlite:///:memory:", "a", dispatching=True) is None


def test_a_data_directory_without_write_access_starts_without_the_file_lock(
        tmp_path: Path) -> None:
    missing = tmp_path / "gone" / "spool.db"  # its directory cannot take the lock files
    lock = lock_sqlite(f"sqlite:///{missing}", "a", dispatching=True)
    assert lock is not None
    lock.release()
