"""A status change's lookups of who listens (webhook endpoints, a message's own push,
an account's push URL) inside the writer's turn: one read when nothing listens, as on
most hubs; the fan-out itself is tested with each kind of listener elsewhere
(test_spool_webhooks, integration/test_pushes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from hub.model import DeliveryReport, Status, Transition
from spool import SqlSpool, open_spool
from tests.factories import NOW, make_account, new_message

LISTENER_TABLES = ("webhook_endpoints", "message_callbacks", "account_callbacks")


@pytest.fixture
def traced(tmp_path: Path) -> Iterator[tuple[SqlSpool, list[str]]]:
    spool = open_spool(f"sqlite:///{tmp_path / 'spool.db'}")
    spool.upgrade()
    statements: list[str] = []

    def trace(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.set_trace_callback(statements.append)

    event.listen(spool.db.engine, "connect", trace)
    spool.db.engine.dispose()  # connections made from now on are traced
    yield spool, statements
    spool.close()


def listener_reads(statements: list[str]) -> int:
    return sum(any(table in sql for table in LISTENER_TABLES) for sql in statements)


def test_a_status_change_asks_once_whether_anything_listens(
    traced: tuple[SqlSpool, list[str]],
) -> None:
    spool, statements = traced
    account = make_account(spool)
    message = new_message(account)
    statements.clear()
    spool.accept([message])
    claim = spool.claim("node", 10, 60, NOW)
    assert listener_reads(statements) == 0  # accepted and sending raise nothing
    statements.clear()
    spool.record(claim.token, [Transition(message.id, Status.SUBMITTED, carrier="sim",
                                          carrier_message_id="c-1")], NOW)
    assert listener_reads(statements) == 1, statements
    statements.clear()
    spool.apply_reports([DeliveryReport("sim", "c-1", Status.DELIVERED, NOW)], NOW)
    assert listener_reads(statements) == 1, statements
    found = spool.get_message(message.id)
    assert found is not None and found.status is Status.DELIVERED
