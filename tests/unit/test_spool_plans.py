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
from spool.acceptance import _BALANCES
from spool.bulk import driver
from spool.queue import _BY_ID_SQLITE, _CLAIM_SQLITE, LEASED, LEASED_SQLITE
from spool.reports import (
    _BY_REF,
    _BY_REF_SQLITE,
    _HELD_FOR,
    _HELD_FOR_SQLITE,
    _PARTS_BY_REF,
    _PARTS_BY_REF_SQLITE,
    _STATES,
)


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
    (LEASED.params(token="token", ids=IDS), "sqlite_autoindex_messages_1 (id=?)"),
    (_STATES.params(ids=IDS), "sqlite_autoindex_messages_1 (id=?)"),
    (_BY_REF.params(carrier="smsc", ids=IDS),
     "ix_messages_carrier_ref (carrier=? AND carrier_message_id=?)"),
    (_PARTS_BY_REF.params(carrier="smsc", ids=IDS),
     "ix_message_parts_carrier_ref (carrier=? AND carrier_message_id=?)"),
    (_HELD_FOR.params(carrier="smsc", ids=IDS),
     "ix_held_reports_carrier_ref (carrier=? AND carrier_message_id=?)"),
    (_BALANCES.params(ids=[1, 2]), "accounts USING INTEGER PRIMARY KEY (rowid=?)"),
], ids=["record's leased messages", "report's message states", "report by reference",
        "part report by reference", "held reports by reference", "intake's balances"])
def test_hot_lookups_go_by_key_not_by_status(
    spool: SqlSpool, query: Select[tuple[object, ...]], index: str
) -> None:
    found = plan(spool, query)
    assert index in found, found
    assert "ix_messages_status" not in found, found


def driver_plan(spool: SqlSpool, sql: str, params: object) -> str:
    with spool.db.read() as conn:
        return " | ".join(row[3] for row in driver(conn).execute(f"EXPLAIN QUERY PLAN {sql}",
                                                                 params))


@pytest.mark.parametrize(("sql", "params", "index"), [
    (LEASED_SQLITE, ("token", '["01A", "01B"]'), "sqlite_autoindex_messages_1 (id=?)"),
    (_BY_ID_SQLITE, ('["01A", "01B"]',), "sqlite_autoindex_messages_1 (id=?)"),
    (_CLAIM_SQLITE, {"token": "t", "owner": "n", "lease_until": 2, "now": 1, "limit": 500},
     "ix_messages_claim"),
    (_BY_REF_SQLITE, ("smsc", '["a", "b"]'),
     "ix_messages_carrier_ref (carrier=? AND carrier_message_id=?)"),
    (_PARTS_BY_REF_SQLITE, ("smsc", '["a", "b"]'),
     "ix_message_parts_carrier_ref (carrier=? AND carrier_message_id=?)"),
    (_HELD_FOR_SQLITE, ("smsc", '["a", "b"]'),
     "ix_held_reports_carrier_ref (carrier=? AND carrier_message_id=?)"),
], ids=["record's leased messages", "messages by id", "claim", "report by reference",
        "part report by reference", "held reports by reference"])
def test_driver_statements_go_by_key(spool: SqlSpool, sql: str, params: object,
                                     index: str) -> None:
    """The same for the statements SQLite's driver runs as they are written."""
    found = driver_plan(spool, sql, params)
    assert index in found, found
    assert "ix_messages_status" not in found, found
