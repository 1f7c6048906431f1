"""The spool's bulk writes: multi-row inserts and updates in chunks of every size, on both
backends, and SQLite's fallback where UPDATE ... FROM is missing."""

from __future__ import annotations

import sqlite3

import pytest

from spool import SqlSpool, bulk, open_spool
from spool.tables import message_events

COUNTS = [1, 2, 255, 256, 257, 1000]  # below, at and across the chunk sizes


def _events(spool: SqlSpool) -> dict[str, tuple[int, str, str]]:
    """The rows as stored (driver values: `at` in microseconds)."""
    with spool.db.read() as conn:
        rows = conn.exec_driver_sql("SELECT message_id, at, status, detail FROM message_events")
        return {r[0]: (r[1], r[2], r[3]) for r in rows}


@pytest.mark.parametrize("count", COUNTS)
def test_bulk_insert_then_update_touch_exactly_the_rows_given(
    spool: SqlSpool, count: int,
) -> None:
    ids = [f"m{i:05d}" for i in range(count)]
    with spool.db.write() as conn:
        bulk.bulk_insert(conn, message_events, ("message_id", "at", "status", "detail"),
                         [(i, n, "accepted", "in") for n, i in enumerate(ids)])
    changed = ids[::2]  # every other row, so chunks must not spill onto neighbours
    with spool.db.write() as conn:
        bulk.bulk_update(conn, message_events,
                         [{"message_id": i, "status": "queued", "at": None} for i in changed],
                         key="message_id", keep=frozenset({"at"}),
                         constants={"detail": "again"})
    found = _events(spool)
    assert len(found) == count
    for n, i in enumerate(ids):
        expected = (n, "queued", "again") if i in set(changed) else (n, "accepted", "in")
        assert found[i] == expected, i


def test_sqlite_without_update_from_falls_back_to_one_row_per_step(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    spool = open_spool(sqlite_url)
    spool.upgrade()
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 31, 1))
    with spool.db.write() as conn:
        bulk.bulk_insert(conn, message_events, ("message_id", "at", "status", "detail"),
                         [("a", 1, "accepted", "in"), ("b", 2, "accepted", "in")])
        bulk.bulk_update(conn, message_events, [{"message_id": "b", "status": "sent"}],
                         key="message_id", constants={"detail": "old sqlite"})
    assert _events(spool) == {"a": (1, "accepted", "in"), "b": (2, "sent", "old sqlite")}
    spool.close()
