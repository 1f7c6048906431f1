"""Parts of long replies are held in the spool until their set is complete, so an SMPP
carrier acknowledges each part only once it is committed.

Revision ID: 0012_inbound_parts
Revises: 0011_held_reports
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_inbound_parts"
down_revision = "0011_held_reports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbound_parts",
        sa.Column("carrier", sa.Text, primary_key=True),
        sa.Column("sender", sa.Text, primary_key=True),
        sa.Column("recipient", sa.Text, primary_key=True),
        sa.Column("ref", sa.Integer, primary_key=True),
        sa.Column("total", sa.Integer, primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_inbound_parts_received", "inbound_parts", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_inbound_parts_received", table_name="inbound_parts")
    op.drop_table("inbound_parts")
