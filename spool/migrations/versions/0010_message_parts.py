"""A message a carrier took in several parts keeps each part's carrier id and final
report, so a long SMPP message's receipts are matched part by part.

Revision ID: 0010_message_parts
Revises: 0009_message_batch_line
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_message_parts"
down_revision = "0009_message_batch_line"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "message_parts",
        sa.Column("message_id", sa.String(26), primary_key=True),
        sa.Column("part", sa.Integer, primary_key=True),
        sa.Column("carrier", sa.Text, nullable=False),
        sa.Column("carrier_message_id", sa.Text, nullable=False),
        sa.Column("status", sa.Text),
        sa.Column("error_code", sa.Text),
        sa.Column("error_text", sa.Text),
    )
    op.create_index("ix_message_parts_carrier_ref", "message_parts",
                    ["carrier", "carrier_message_id"])


def downgrade() -> None:
    op.drop_index("ix_message_parts_carrier_ref", table_name="message_parts")
    op.drop_table("message_parts")
