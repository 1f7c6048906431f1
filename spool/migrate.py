"""Schema versioning with Alembic driven from code (no alembic.ini): report where a
database stands against this code's migrations, and upgrade it to head. Every start and
every CLI command asks where the database stands: one at HEAD answers from its version
table, without Alembic, whose import and scripts cost a CLI command about a seventh of
its time. Alembic is imported to upgrade, or to place a database that is not at HEAD."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text

from hub.ports import SchemaState
from spool.engine import Database

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The newest migration's revision. A test holds it to Alembic's own head: a new migration
# fails that test until this names it.
HEAD = "0027_dialect_sessions"


def alembic_config() -> Config:
    from alembic.config import Config  # noqa: PLC0415 - see the module's docstring

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    return config


def schema_state(db: Database) -> SchemaState:
    with db.read() as conn:
        current = _current_revisions(conn)
        has_messages = current is None and inspect(conn).has_table("messages")
    if current == {HEAD}:
        return SchemaState.CURRENT
    if current is None:
        # Tables but no version stamp is not ours to guess about: refuse to touch it.
        return SchemaState.NEWER if has_messages else SchemaState.EMPTY
    from alembic.script import ScriptDirectory  # noqa: PLC0415 - not at HEAD: rare

    script = ScriptDirectory.from_config(alembic_config())
    known = {rev.revision for rev in script.walk_revisions()}
    if not current <= known:
        return SchemaState.NEWER
    if current == set(script.get_heads()):
        return SchemaState.CURRENT
    return SchemaState.OUTDATED


def _current_revisions(conn: Connection) -> set[str] | None:
    """Revisions stamped in alembic_version (Alembic's own table, read as Alembic reads
    it), or None if the table does not exist."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


def upgrade(db: Database) -> None:
    from alembic import command  # noqa: PLC0415 - see the module's docstring

    config = alembic_config()
    with db.write() as conn:
        # env.py runs the migrations on this connection, inside this transaction.
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
