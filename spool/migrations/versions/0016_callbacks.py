"""Delivery-report pushes in the dialects' shapes: the push a message's request asked
for (Kannel dlr-url and dlr-mask, Clickatell callback), and each account's own push
URLs (the XML deliveryReport, Clickatell's per-account callback URL).

Revision ID: 0016_callbacks
Revises: 0015_optouts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_callbacks"
down_revision = "0015_optouts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "message_callbacks",
        sa.Column("message_id", sa.String(26), primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("url", sa.Text),
        sa.Column("mask", sa.Integer, nullable=False),
        sa.Column("api_id", sa.Text),
    )
    op.create_table(
        "account_callbacks",
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("account_callbacks")
    op.drop_table("message_callbacks")
