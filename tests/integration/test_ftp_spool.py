"""The spool's batch operations on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hub.batches import Batch, BatchState
from hub.model import Account
from spool import SqlSpool


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
