"""API keys may expire, and a deleted account stays as a tombstone (its name taken, its
message history kept for billing) instead of being removed.

Revision ID: 0013_key_expiry_account_deleted
Revises: 0012_inbound_parts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_key_expiry_account_deleted"
down_revision = "0012_inbound_parts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: both backends add them without rewriting the table.
    op.add_column("api_keys", sa.Column("expires_at", sa.BigInteger))
    op.add_column("accounts", sa.Column("deleted_at", sa.BigInteger))


def downgrade() -> None:
    # Batch mode: SQLite drops a column by copying the table.
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("deleted_at")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("expires_at")
