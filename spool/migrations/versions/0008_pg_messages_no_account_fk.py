"""PostgreSQL: no foreign key from messages to accounts.

Its check is a trigger that runs a locking query for every inserted row: two thirds of
the time of COPYing accepted messages (12.5 -> 4.3 us a row). It guarded nothing intake
does not already guarantee: every accepting transaction first locks the account's row
(SELECT ... FOR UPDATE, refusing an unknown account), and accounts are never deleted.
SQLite keeps the key: there the check is an index lookup in C (about 1 us a row), and
dropping it would mean rebuilding the table.

Revision ID: 0008_pg_messages_no_account_fk
Revises: 0007_batch_report_final
"""

from __future__ import annotations

from alembic import op

revision = "0008_pg_messages_no_account_fk"
down_revision = "0007_batch_report_final"
branch_labels = None
depends_on = None

_NAME = "messages_account_id_fkey"  # PostgreSQL's own name for the unnamed key


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(_NAME, "messages", type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_foreign_key(_NAME, "messages", "accounts", ["account_id"], ["id"])
