"""New messages wait as 'accepted' (one event at acceptance instead of two), so the
claim index covers accepted, queued and scheduled messages.

Revision ID: 0006_accepted_is_claimable
Revises: 0005_lean_indexes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_accepted_is_claimable"
down_revision = "0005_lean_indexes"
branch_labels = None
depends_on = None

_OLD = sa.text("status IN ('queued', 'scheduled')")
_NEW = sa.text("status IN ('accepted', 'queued', 'scheduled')")


def _claim_index(where: sa.TextClause) -> None:
    op.create_index("ix_messages_claim", "messages",
                    [sa.text("priority DESC"), "due_at", "id"],
                    sqlite_where=where, postgresql_where=where)


def upgrade() -> None:
    op.drop_index("ix_messages_claim", table_name="messages")
    _claim_index(_NEW)


def downgrade() -> None:
    op.execute("UPDATE messages SET status = 'queued' WHERE status = 'accepted'")
    op.drop_index("ix_messages_claim", table_name="messages")
    _claim_index(_OLD)
