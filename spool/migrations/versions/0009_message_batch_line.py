"""Messages remember their line in the batch file they came from, so a batch cut off by a
crash resumes after the rows the spool already holds instead of failing part-way.

Revision ID: 0009_message_batch_line
Revises: 0008_pg_messages_no_account_fk
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_message_batch_line"
down_revision = "0008_pg_messages_no_account_fk"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: both backends add it without rewriting the table.
    op.add_column("messages", sa.Column("batch_line", sa.Integer))


def downgrade() -> None:
    # Batch mode: SQLite drops a column by copying the table.
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("batch_line")
