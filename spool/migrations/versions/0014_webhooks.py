"""Webhook endpoints, and outbox items that carry an event to one of them (its type and
body), delivered in order per endpoint and message.

Revision ID: 0014_webhooks
Revises: 0013_key_expiry_account_deleted
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_webhooks"
down_revision = "0013_key_expiry_account_deleted"
branch_labels = None
depends_on = None

_OWED = sa.text("status IN ('pending', 'sending') AND endpoint_id IS NOT NULL")
_HAS_ENDPOINT = sa.text("endpoint_id IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("events", sa.Text, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("previous_secret", sa.Text),
        sa.Column("previous_until", sa.BigInteger),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("disabled_reason", sa.Text),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_webhook_endpoints_account_id", "webhook_endpoints", ["account_id"])
    # Nullable, no default: both backends add them without rewriting the table.
    op.add_column("outbox", sa.Column("endpoint_id", sa.String(26)))
    op.add_column("outbox", sa.Column("event_type", sa.Text))
    op.add_column("outbox", sa.Column("payload", sa.Text))
    op.create_index("ix_outbox_order", "outbox", ["endpoint_id", "message_id", "id"],
                    sqlite_where=_OWED, postgresql_where=_OWED)
    op.create_index("ix_outbox_endpoint", "outbox", ["endpoint_id", "created_at"],
                    sqlite_where=_HAS_ENDPOINT, postgresql_where=_HAS_ENDPOINT)


def downgrade() -> None:
    op.drop_index("ix_outbox_endpoint", table_name="outbox")
    op.drop_index("ix_outbox_order", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("payload")
        batch.drop_column("event_type")
        batch.drop_column("endpoint_id")
    op.drop_index("ix_webhook_endpoints_account_id", table_name="webhook_endpoints")
    op.drop_table("webhook_endpoints")
