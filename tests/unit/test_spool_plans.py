"""Query plans on SQLite (no statistics: its planner guesses from the indexes alone) for
the hot queries that name their messages by id: they must look each one up by its key,
not read every message of a status to find them."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.dialects import sqlite

from spool import open_spool
from spool.queue import leased_query


def test_record_finds_its_leased_messages_by_id_not_by_status(tmp_path: Path) -> None:
    spool = open_spool(f"sqlite:///{tmp_path / 'spool.db'}")
    spool.upgrade()
    query = leased_query("token", ["01A", "01B", "01C"])
    sql = str(query.compile(dialect=sqlite.dialect(),
                            compile_kwargs={"literal_binds": True}))
    with spool.db.read() as conn:
        plan = " | ".join(row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
    spool.close()
    assert "sqlite_autoindex_messages_1 (id=?)" in plan, plan  # the primary key
    assert "ix_messages_status" not in plan, plan
