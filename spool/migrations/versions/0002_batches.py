"""Batches: one row per file dropped over FTP, with its progress counters.

Revision ID: 0002_batches
Revises: 0001
Create Date: 2025-06-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_batches"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("file_name", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("format", sa.Text, nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("accepted", sa.Integer, nullable=False),
        sa.Column("rejected", sa.Integer, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("duplicate_of", sa.String(26)),
        sa.Column("finished_at", sa.BigInteger),
    )
    op.create_index("ix_batches_account_sha", "batches", ["account_id", "sha256", "received_at"])
    op.create_index("ix_batches_state", "batches", ["state"])


def downgrade() -> None:
    op.drop_index("ix_batches_state", table_name="batches")
    op.drop_index("ix_batches_account_sha", table_name="batches")
    op.drop_table("batches")
