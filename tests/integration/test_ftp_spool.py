"""The spool's batch operations and the batches migrations on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import sqlalchemy
from alembic import command

from hub.batches import Batch, BatchState
from hub.model import Account
from spool import SqlSpool, open_spool
from spool.migrate import alembic_config


def test_batches_are_stored_found_by_content_and_listed(
    spool: SqlSpool, make_account: Callable[..., Account]
) -> None:
    account = make_account("acme")
    now = datetime.now(UTC).replace(microsecond=0)
    batch = Batch(id="01J0000000000000000000000A", account_id=account.id, file_name="a.csv",
                  sha256="ab" * 32, format="csv", received_at=now,
                  state=BatchState.PROCESSING)
    spool.create_batch(batch)
    done = replace(batch, rows=3, accepted=2, rejected=1, state=BatchState.ACCEPTED)
    spool.update_batch(done)
    assert spool.get_batch(batch.id) == done
    assert spool.open_batches() == [done]
    since = now - timedelta(hours=1)
    assert spool.find_batch_by_content(account.id, "ab" * 32, since) == done
    assert spool.find_batch_by_content(account.id, "cd" * 32, since) is None
    assert spool.find_batch_by_content(account.id, "ab" * 32, now + timedelta(1)) is None
    assert spool.list_batches(account.id, 10) == [done]
    assert spool.list_batches(None, 10) == [done]
    assert spool.batch_status_counts(batch.id) == {}
    assert spool.batch_messages(batch.id, "", 10) == []
    spool.update_batch(replace(done, state=BatchState.FINAL, finished_at=now))
    assert spool.open_batches() == []


def _batch(account: Account, state: BatchState, n: int) -> Batch:
    return Batch(id=f"01J00000000000000000000{n:03d}", account_id=account.id,
                 file_name=f"{state.value}.csv", sha256=f"{n:064x}", format="csv",
                 received_at=datetime.now(UTC).replace(microsecond=0), state=state)


def test_accepted_and_failed_batches_are_reported_on_until_their_report_is_final(
    spool: SqlSpool, make_account: Callable[..., Account]
) -> None:
    account = make_account("acme")
    made = [_batch(account, state, n) for n, state in enumerate(BatchState)]
    for batch in made:
        spool.create_batch(batch)
    by_state = {b.state: b for b in made}
    accepted, failed = by_state[BatchState.ACCEPTED], by_state[BatchState.FAILED]
    assert spool.reporting_batches() == [accepted, failed]
    spool.update_batch(replace(failed, report_final=True))
    assert spool.get_batch(failed.id) == replace(failed, report_final=True)
    assert spool.reporting_batches() == [accepted]
    assert spool.open_batches() == [by_state[BatchState.PROCESSING], accepted]


def test_upgrade_marks_final_batches_reported_and_leaves_failed_ones_to_report(
    spool_url: str
) -> None:
    store = open_spool(spool_url)
    try:
        config = alembic_config()
        with store.db.write() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0006_accepted_is_claimable")
        with store.db.write() as conn:  # the accounts table as 0006 had it: raw SQL,
            # since the spool's own statements name columns later migrations add
            account_id = conn.execute(sqlalchemy.text(
                "INSERT INTO accounts (name, balance, price_per_segment, enabled, created_at)"
                " VALUES ('acme', 0, 0, true, 0) RETURNING id")).scalar_one()
        columns = ("id", "account_id", "file_name", "sha256", "format", "received_at",
                   "rows", "accepted", "rejected", "state")
        insert = sqlalchemy.text(f"INSERT INTO batches ({', '.join(columns)}) VALUES "
                                 f"({', '.join(':' + c for c in columns)})")
        with store.db.write() as conn:
            for n, state in enumerate(("final", "failed", "accepted")):
                conn.execute(insert, {"id": f"B{n}", "account_id": account_id,
                                      "file_name": "a.csv", "sha256": "ab", "format": "csv",
                                      "received_at": 0, "rows": 1, "accepted": 1,
                                      "rejected": 0, "state": state})
        store.upgrade()
        marks = {b.state.value: b.report_final for b in store.list_batches(None, 10)}
        assert marks == {"final": True, "failed": False, "accepted": False}
        assert [b.id for b in store.reporting_batches()] == ["B1", "B2"]
    finally:
        store.close()
