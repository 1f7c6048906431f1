"""Initial schema: accounts, sender ids, API keys, messages and their events.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Times are BigInteger microseconds since the epoch (UTC); money is BigInteger 1/10000
credit units. This file is frozen history: later changes go in new revisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

CLAIMABLE = sa.text("status IN ('queued', 'scheduled')")
SENDING = sa.text("status = 'sending'")
HAS_REF = sa.text("client_ref IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("balance", sa.BigInteger, nullable=False),
        sa.Column("price_per_segment", sa.BigInteger, nullable=False),
        sa.Column("password_hash", sa.Text),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "account_sender_ids",
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("sender_id", sa.Text, primary_key=True),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key_id", sa.Text, nullable=False, unique=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("digest", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger),
    )
    create_messages()
    op.create_table(
        "message_events",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True
        ),
        sa.Column("message_id", sa.String(26), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_message_events_message_id", "message_events", ["message_id"])


def create_messages() -> None:
    op.create_table(
        "messages",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("client_ref", sa.Text),
        sa.Column("batch_id", sa.Text),
        sa.Column("sender", sa.Text),
        sa.Column("recipient", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("encoding", sa.Text, nullable=False),
        sa.Column("segments", sa.Integer, nullable=False),
        sa.Column("cost", sa.BigInteger, nullable=False),
        sa.Column("message_class", sa.Text, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("send_at", sa.BigInteger),
        sa.Column("expires_at", sa.BigInteger),
        sa.Column("due_at", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("carrier", sa.Text),
        sa.Column("carrier_message_id", sa.Text),
        sa.Column("error_code", sa.Text),
        sa.Column("error_text", sa.Text),
        sa.Column("lease_token", sa.Text),
        sa.Column("lease_owner", sa.Text),
        sa.Column("lease_expires_at", sa.BigInteger),
        sa.Column("accepted_at", sa.BigInteger, nullable=False),
        sa.Column("submitted_at", sa.BigInteger),
        sa.Column("completed_at", sa.BigInteger),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_messages_claim",
        "messages",
        [sa.text("priority DESC"), "due_at", "id"],
        sqlite_where=CLAIMABLE,
        postgresql_where=CLAIMABLE,
    )
    op.create_index(
        "ix_messages_lease",
        "messages",
        ["lease_expires_at"],
        sqlite_where=SENDING,
        postgresql_where=SENDING,
    )
    op.create_index("ix_messages_carrier_ref", "messages", ["carrier", "carrier_message_id"])
    op.create_index(
        "ux_messages_client_ref",
        "messages",
        ["account_id", "client_ref"],
        unique=True,
        sqlite_where=HAS_REF,
        postgresql_where=HAS_REF,
    )
    op.create_index("ix_messages_batch", "messages", ["batch_id"])
    op.create_index("ix_messages_status", "messages", ["status"])


def downgrade() -> None:
    for table in ("message_events", "messages", "api_keys", "account_sender_ids", "accounts"):
        op.drop_table(table)
