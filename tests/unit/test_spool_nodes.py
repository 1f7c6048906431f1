"""The nodes table (spool/nodes.py) on SQLite and PostgreSQL: heartbeats by node name and
role, the messages and FTP batches each name holds under lease, and a clean stop's row
removed."""

from __future__ import annotations

from datetime import timedelta

from hub.batches import Batch, BatchState
from hub.nodes import NodeInfo
from spool import SqlSpool
from tests.factories import NOW, make_account, new_message


def node(name: str, role: str, pid: int = 10) -> NodeInfo:
    return NodeInfo(name, role, pid, "host-1", NOW, "1.0")


def test_nodes_are_listed_with_their_last_heartbeat_and_the_messages_they_lease(
        spool: SqlSpool) -> None:
    acme = make_account(spool, "acme")
    spool.accept([new_message(acme) for _ in range(3)])
    spool.claim("a", 2, 60, NOW)
    spool.beat(node("a", "dispatch"), NOW)
    spool.beat(node("a", "ingress", pid=11), NOW)
    spool.beat(node("b", "all"), NOW)
    later = NOW + timedelta(seconds=5)
    spool.beat(node("a", "dispatch"), later)
    found = {(r.info.name, r.info.role): r for r in spool.list_nodes()}
    assert list(found) == [("a", "dispatch"), ("a", "ingress"), ("b", "all")]
    assert found["a", "dispatch"].last_seen == later
    assert found["a", "dispatch"].info == node("a", "dispatch")
    assert (found["a", "dispatch"].messages_leased, found["a", "dispatch"].outbox_leased) == (2, 0)
    assert found["a", "ingress"].messages_leased == 0  # an ingress process claims nothing
    assert found["b", "all"].messages_leased == 0


def test_nodes_are_listed_with_the_ftp_batches_they_lease(spool: SqlSpool) -> None:
    acme = make_account(spool, "acme")
    for n, holder in enumerate(("a", "b", "b"), start=1):
        upload = Batch(f"01J00000000000000000000{n:03d}", acme.id, f"f{n}.csv", "", "", NOW,
                       BatchState.PROCESSING)
        assert spool.receive_batch(upload, holder, NOW + timedelta(seconds=15))
    spool.beat(node("a", "dispatch"), NOW)
    spool.beat(node("a", "ingress", pid=11), NOW)
    spool.beat(node("b", "all"), NOW)
    found = {(r.info.name, r.info.role): r.batches_leased for r in spool.list_nodes()}
    # The FTP drop runs with the listeners: a dispatch process holds no batch.
    assert found == {("a", "dispatch"): 0, ("a", "ingress"): 1, ("b", "all"): 2}
    spool.release_batch_leases("b")  # a clean stop lets them go
    assert {(r.info.name, r.batches_leased) for r in spool.list_nodes()
            if r.info.role != "dispatch"} == {("a", 1), ("b", 0)}


def test_a_restart_takes_the_row_over_and_only_its_own_process_removes_it(
        spool: SqlSpool) -> None:
    spool.beat(node("a", "all", pid=10), NOW)
    spool.beat(node("a", "all", pid=20), NOW)  # restarted after a crash
    spool.leave(node("a", "all", pid=10))  # the old process's leave is too late: kept
    assert [r.info.pid for r in spool.list_nodes()] == [20]
    spool.leave(node("a", "all", pid=20))
    assert spool.list_nodes() == []
