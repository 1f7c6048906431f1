"""Consents (issue #15): a recipient's agreement, per account, to direct marketing
outside CPA regulation 4's hours.

Revision ID: 0019_consents
Revises: 0018_privacy
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019_consents"
down_revision = "0018_privacy"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consents",
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("number", sa.Text, primary_key=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("note", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("consents")
