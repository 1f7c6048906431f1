"""Partial indexes for carrier ids and batch ids: rows without them cost no index entry.

Revision ID: 0005_lean_indexes
Revises: 0004_mail
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_lean_indexes"
down_revision = "0004_mail"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_messages_carrier_ref", table_name="messages")
    has_carrier_id = sa.text("carrier_message_id IS NOT NULL")
    op.create_index("ix_messages_carrier_ref", "messages", ["carrier", "carrier_message_id"],
                    sqlite_where=has_carrier_id, postgresql_where=has_carrier_id)
    op.drop_index("ix_messages_batch", table_name="messages")
    has_batch = sa.text("batch_id IS NOT NULL")
    op.create_index("ix_messages_batch", "messages", ["batch_id"],
                    sqlite_where=has_batch, postgresql_where=has_batch)


def downgrade() -> None:
    op.drop_index("ix_messages_batch", table_name="messages")
    op.create_index("ix_messages_batch", "messages", ["batch_id"])
    op.drop_index("ix_messages_carrier_ref", table_name="messages")
    op.create_index("ix_messages_carrier_ref", "messages", ["carrier", "carrier_message_id"])
