"""Operators (issue #14): the staff who sign in to the portal's operator pages, with
their password hashes, and the credit ledger: each change of an account's credit made
by hand, with its reason and who made it.

Revision ID: 0024_operators
Revises: 0021_batch_leases
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024_operators"
down_revision = "0021_batch_leases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "credit_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("balance", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
    )
    op.create_index("ix_credit_changes_account", "credit_changes", ["account_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_credit_changes_account", "credit_changes")
    op.drop_table("credit_changes")
    op.drop_table("operators")
