"""Inbound messages (replies, opt-outs) and the outbox of what the hub owes customers.

Revision ID: 0003_inbound
Revises: 0002_batches
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_inbound"
down_revision = "0002_batches"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbound",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("carrier", sa.Text, nullable=False),
        sa.Column("carrier_message_id", sa.Text),
        sa.Column("sender", sa.Text, nullable=False),
        sa.Column("recipient", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id")),
        sa.Column("in_reply_to", sa.String(26)),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.Column("routed_at", sa.BigInteger),
    )
    has_ref = sa.text("carrier_message_id IS NOT NULL")
    op.create_index("ux_inbound_carrier_ref", "inbound", ["carrier", "carrier_message_id"],
                    unique=True, sqlite_where=has_ref, postgresql_where=has_ref)
    op.create_index("ix_inbound_account", "inbound", ["account_id", "received_at"])
    unrouted = sa.text("routed_at IS NULL")
    op.create_index("ix_inbound_unrouted", "inbound", ["received_at"],
                    sqlite_where=unrouted, postgresql_where=unrouted)
    op.create_index("ix_messages_recipient", "messages", ["recipient", "accepted_at"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id")),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("inbound_id", sa.String(26)),
        sa.Column("message_id", sa.String(26)),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error_code", sa.Text),
        sa.Column("error_text", sa.Text),
        sa.Column("lease_token", sa.Text),
        sa.Column("lease_expires_at", sa.BigInteger),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("due_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    due = sa.text("status = 'pending'")
    op.create_index("ix_outbox_due", "outbox", ["channel", "due_at"],
                    sqlite_where=due, postgresql_where=due)
    sending = sa.text("status = 'sending'")
    op.create_index("ix_outbox_lease", "outbox", ["lease_expires_at"],
                    sqlite_where=sending, postgresql_where=sending)


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_index("ix_messages_recipient", table_name="messages")
    op.drop_table("inbound")
