"""Idempotency keys keep a 201's Location, so that a replayed answer carries it too.

Revision ID: 0025_idempotency_location
Revises: 0024_operators
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025_idempotency_location"
down_revision = "0024_operators"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("idempotency_keys", sa.Column("location", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("location")
