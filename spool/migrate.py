"""Schema versioning with Alembic driven from code (no alembic.ini): report where a
database stands against this code's migrations, and upgrade it to head."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect

from hub.ports import SchemaState
from spool.engine import Database

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    return config


def schema_state(db: Database) -> SchemaState:
    script = ScriptDirectory.from_config(alembic_config())
    with db.read() as conn:
        current = _current_revisions(conn)
        has_messages = inspect(conn).has_table("messages")
    if current is None:
        # Tables but no version stamp is not ours to guess about: refuse to touch it.
        return SchemaState.NEWER if has_messages else SchemaState.EMPTY
    known = {rev.revision for rev in script.walk_revisions()}
    if not current <= known:
        return SchemaState.NEWER
    if current == set(script.get_heads()):
        return SchemaState.CURRENT
    return SchemaState.OUTDATED


def _current_revisions(conn: Connection) -> set[str] | None:
    """Revisions stamped in alembic_version, or None if the table does not exist."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return set(MigrationContext.configure(conn).get_current_heads())


def upgrade(db: Database) -> None:
    config = alembic_config()
    with db.write() as conn:
        # env.py runs the migrations on this connection, inside this transaction.
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
