"""Delivery reports that come before the submission they answer is recorded are held
in the spool, not in memory, so a receipt the carrier was told we have survives a crash.

Revision ID: 0011_held_reports
Revises: 0010_message_parts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_held_reports"
down_revision = "0010_message_parts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "held_reports",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  primary_key=True),
        sa.Column("carrier", sa.Text, nullable=False),
        sa.Column("carrier_message_id", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("error_code", sa.Text),
        sa.Column("error_text", sa.Text),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("held_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_held_reports_carrier_ref", "held_reports",
                    ["carrier", "carrier_message_id"])
    op.create_index("ix_held_reports_held_at", "held_reports", ["held_at"])


def downgrade() -> None:
    op.drop_index("ix_held_reports_held_at", table_name="held_reports")
    op.drop_index("ix_held_reports_carrier_ref", table_name="held_reports")
    op.drop_table("held_reports")
