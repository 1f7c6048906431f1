"""Signed-out portal sessions (issue #14): a session lives in its signed cookie, so the
spool remembers the ones signed out, until they would have expired, for a copy of the
cookie kept after sign out to fail too.

Revision ID: 0026_ended_sessions
Revises: 0025_idempotency_location
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026_ended_sessions"
down_revision = "0025_idempotency_location"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ended_sessions",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("until", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_ended_sessions_until", "ended_sessions", ["until"])


def downgrade() -> None:
    op.drop_index("ix_ended_sessions_until", "ended_sessions")
    op.drop_table("ended_sessions")
