"""Idempotency keys of the JSON API's POSTs: the request each key was first used for,
and its answer, kept per account for the replay window.

Revision ID: 0017_idempotency_keys
Revises: 0016_callbacks
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_idempotency_keys"
down_revision = "0016_callbacks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("token", sa.Text, nullable=False),
        sa.Column("status", sa.Integer),
        sa.Column("media_type", sa.Text),
        sa.Column("body", sa.LargeBinary),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("locked_until", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_idempotency_keys_expires", "idempotency_keys", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_expires", "idempotency_keys")
    op.drop_table("idempotency_keys")
