"""Shared fixtures: spool URLs for SQLite and an isolated PostgreSQL schema per test,
and a migrated spool on each backend."""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy
from sqlalchemy.engine import make_url

from hub.model import Account
from spool import SqlSpool, open_spool
from tests.factories import make_account as build_account

# Fixtures shared by test modules in several folders.
pytest_plugins = ["tests.relay", "tests.receiver"]

PG_ENV = "SMSHUB_TEST_PG_URL"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'spool' / 'spool.db'}"


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The test server's URL, or skip every PostgreSQL test saying why."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set")
    engine = _pg_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
    except sqlalchemy.exc.OperationalError as exc:
        pytest.skip(f"PostgreSQL at {PG_ENV} is unreachable: {exc.orig}")
    finally:
        engine.dispose()
    return url


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A URL whose connections live in a fresh schema, dropped after the test."""
    yield from _in_new_schema(pg_server)


@pytest.fixture
def other_pg_url(pg_server: str) -> Iterator[str]:
    """Another fresh schema's URL beside pg_url's: a second spool in the same database."""
    yield from _in_new_schema(pg_server)


def _in_new_schema(pg_server: str) -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = _pg_engine(pg_server)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in pg_server else "?"
    yield f"{pg_server}{sep}options={quote(f'-csearch_path={schema}', safe='')}"
    _drop_schema(engine, schema)
    engine.dispose()


def _drop_schema(engine: sqlalchemy.Engine, schema: str) -> None:
    """DROP SCHEMA, tried again when PostgreSQL picks it as a deadlock's victim: a query
    a stopped hub's worker thread had begun may still hold a row lock it waits behind."""
    for attempt in range(5):
        try:
            with engine.begin() as conn:
                conn.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
            return
        except sqlalchemy.exc.OperationalError as exc:
            if attempt == 4 or "deadlock" not in str(exc.orig):
                raise
            time.sleep(0.2 * (attempt + 1))


def _pg_engine(url: str) -> sqlalchemy.Engine:
    return sqlalchemy.create_engine(
        make_url(url).set(drivername="postgresql+psycopg"), poolclass=sqlalchemy.NullPool
    )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def spool_url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture
def spool(spool_url: str) -> Iterator[SqlSpool]:
    store = open_spool(spool_url)
    store.upgrade()
    yield store
    store.close()


@pytest.fixture
def make_account(spool: SqlSpool) -> Callable[..., Account]:
    """make_account(name=None, credits="100", price="0.05", sender_ids=("ACME",))."""

    def make(*args: Any, **kwargs: Any) -> Account:
        return build_account(spool, *args, **kwargs)

    return make


# --- leaving the test process ---------------------------------------------------------

_exit_status: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _exit_status.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """smpp34's server (the test SMSC we did not write) leaves Rust runtime threads that
    can abort or crash the interpreter's finalisation after every test has passed (seen
    here in about one exit in five). Once pytest has reported, leave without finalising,
    with pytest's own exit status."""
    if "smpp34._smpp34" in sys.modules and _exit_status:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status[-1])
