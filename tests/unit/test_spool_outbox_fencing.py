"""Outbox lease fencing between nodes on PostgreSQL (issue #16): a runner recording an
item whose lease ran out, while another node claims that item at the same moment,
either records it or leaves it to the other node, never both."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event
from ulid import ULID

from hub.model import NewOutboxItem, OutboxItem, OutboxResult, OutboxStatus
from spool import SqlSpool, open_spool
from tests.factories import NOW
from tests.unit.test_spool_inbound import mo, new

pytestmark = pytest.mark.postgres


@pytest.fixture
def two_nodes(pg_url: str) -> Iterator[tuple[SqlSpool, SqlSpool]]:
    """Two nodes' spools on one PostgreSQL schema (a process's spool writes one
    transaction at a time, so another node's claim needs a spool of its own)."""
    a = open_spool(pg_url)
    a.upgrade()
    b = open_spool(pg_url)
    yield a, b
    b.close()
    a.close()


def test_a_late_record_and_another_nodes_claim_never_both_take_the_item(
    two_nodes: tuple[SqlSpool, SqlSpool],
) -> None:
    spool, other = two_nodes
    [stored] = spool.store_inbound([new(mo())])
    item = NewOutboxItem(str(ULID()), "email", None, "a@example.com", inbound_id=stored.id)
    spool.route_inbound([stored.id], [item], NOW)
    [first] = spool.claim_outbox("email", 10, 1, NOW)  # node a; its lease runs out
    later = NOW + timedelta(seconds=2)
    taken: list[OutboxItem] = []

    def node_b_claims() -> None:
        taken.extend(other.claim_outbox("email", 10, 60, later, "b"))

    # Node b claims right after a's record has looked up the items it holds, before
    # a's record writes: the moment where a's result could overwrite b's lease.
    recording = threading.Event()

    def between(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if recording.is_set() and statement.lstrip().startswith("SELECT outbox.id"):
            recording.clear()
            claimer = threading.Thread(target=node_b_claims)
            claimer.start()
            claimer.join(5)  # b skips a row a has locked: it never waits for a

    event.listen(spool.db.engine, "after_cursor_execute", between)
    try:
        recording.set()
        applied = spool.record_outbox(
            first.lease_token or "", [OutboxResult(item.id, OutboxStatus.SENT)], later)
    finally:
        event.remove(spool.db.engine, "after_cursor_execute", between)
    assert not recording.is_set(), "the record's lookup was not seen"
    done = spool.get_outbox(item.id)
    assert done is not None
    if taken:  # b has it: a's late result is refused, b's lease stands
        assert applied == [] and done.status is OutboxStatus.SENDING
        assert done.lease_token == taken[0].lease_token
    else:  # a recorded it first: b found nothing to send
        assert applied == [item.id] and done.status is OutboxStatus.SENT
