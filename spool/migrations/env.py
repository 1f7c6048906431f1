"""Alembic environment: migrations always run on the connection spool.migrate passes in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("run migrations through spool.migrate, which passes a connection")
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported")
run_migrations_online()
