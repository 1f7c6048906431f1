"""Query plans on SQLite (no statistics: its planner guesses from the indexes alone) for
the hot queries that name their messages by id or carrier reference: they must look
each one up by its key, not read every message of a status to find them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Select
from sqlalchemy.dialects import sqlite

from spool import SqlSpool, open_spool
from spool.acceptance import _balances
from spool.queue import leased_query
from spool.reports import _STATES, _by_ref, _held_for, _parts_by_ref


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[SqlSpool]:
    store = open_spool(f"sqlite:///{tmp_path / 'spool.db'}")
    store.upgrade()
    yield store
    store.close()


def plan(spool: SqlSpool, query: Select[tuple[object, ...]]) -> str:
    sql = str(query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    with spool.db.read() as conn:
        return " | ".join(row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))


IDS = ["01A", "01B", "01C"]


@pytest.mark.parametrize(("query", "index"), [
    (leased_query(True).params(token="token", ids=IDS), "sqlite_autoindex_messages_1 (id=?)"),
    (_STATES.params(ids=IDS), "sqlite_autoindex_messages_1 (id=?)"),
    (_by_ref(True).params(carrier="smsc", ids=IDS),
     "ix_messages_carrier_ref (carrier=? AND carrier_message_id=?)"),
    (_parts_by_ref(True).params(carrier="smsc", ids=IDS),
     "ix_message_parts_carrier_ref (carrier=? AND carrier_message_id=?)"),
    (_held_for(True).params(carrier="smsc", ids=IDS),
     "ix_held_reports_carrier_ref (carrier=? AND carrier_message_id=?)"),
    (_balances(True).params(ids=[1, 2]), "accounts USING INTEGER PRIMARY KEY (rowid=?)"),
], ids=["record's leased messages", "report's message states", "report by reference",
        "part report by reference", "held reports by reference", "intake's balances"])
def test_hot_lookups_go_by_key_not_by_status(
    spool: SqlSpool, query: Select[tuple[object, ...]], index: str
) -> None:
    found = plan(spool, query)
    assert index in found, found
    assert "ix_messages_status" not in found, found
