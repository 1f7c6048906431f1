"""Clickatell session ids in the spool (issue #13): a session opened by `auth` on one
node or process is known to every other sharing the spool, by a digest of its id.

Revision ID: 0027_dialect_sessions
Revises: 0026_ended_sessions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027_dialect_sessions"
down_revision = "0026_ended_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dialect_sessions",
        sa.Column("digest", sa.Text, primary_key=True),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_dialect_sessions_expires", "dialect_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_dialect_sessions_expires", "dialect_sessions")
    op.drop_table("dialect_sessions")
