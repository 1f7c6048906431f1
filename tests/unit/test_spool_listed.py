"""`spool.rows.listed`: a column IN a list passed as one parameter, on SQLite (JSON) and
PostgreSQL (an array), so that its statements compile once whatever the list's length."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from spool import SqlSpool
from spool.rows import listed
from spool.tables import messages
from tests.factories import make_account, new_message

STATEMENT = select(messages.c.id).where(listed(messages.c.id))


@pytest.mark.parametrize(("dialect", "expected"), [
    (sqlite.dialect(), "FROM json_each("),
    (postgresql.psycopg.dialect(), "= ANY ("),
])
def test_the_list_is_one_parameter_in_a_statement_that_never_changes(
        dialect: Dialect, expected: str) -> None:
    compiled = STATEMENT.compile(dialect=dialect)
    assert expected in str(compiled)
    assert list(compiled.params) == ["ids"]
    # Nothing left to render at execution, as an expanding IN would be for each length.
    assert "POSTCOMPILE" not in str(compiled)


def test_lists_of_any_length_find_exactly_their_rows(spool: SqlSpool) -> None:
    account = make_account(spool, credits="1000")
    committed = spool.accept([new_message(account) for _ in range(700)])
    stored = [c.message.id for c in committed if c.message is not None]
    assert len(stored) == 700
    with spool.db.read() as conn:
        def found(ids: list[str]) -> set[str]:
            return set(conn.execute(STATEMENT, {"ids": ids}).scalars())

        assert found([]) == set()
        assert found([stored[3], "not-a-message"]) == {stored[3]}
        assert found(stored) == set(stored)
