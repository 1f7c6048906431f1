"""Email-to-SMS: per-account mail settings, allowed senders, accepted mails (for
receipts and threaded replies) and what each email outbox item is about.

Revision ID: 0004_mail
Revises: 0003_inbound
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_mail"
down_revision = "0003_inbound"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mail_accounts",
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("subject_mode", sa.Text, nullable=False),
        sa.Column("too_long", sa.Text, nullable=False),
        sa.Column("receipts", sa.Boolean, nullable=False),
        sa.Column("final_receipts", sa.Boolean, nullable=False),
        sa.Column("replies", sa.Boolean, nullable=False),
        sa.Column("cut_markers", sa.Text, nullable=False),
    )
    op.create_table(
        "mail_senders",
        sa.Column("pattern", sa.Text, primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
    )
    op.create_index("ix_mail_senders_account_id", "mail_senders", ["account_id"])
    op.create_table(
        "mails",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("sender", sa.Text, nullable=False),
        sa.Column("reply_to", sa.Text, nullable=False),
        sa.Column("message_id", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.Column("receipts", sa.Boolean, nullable=False),
        sa.Column("final_receipt", sa.Boolean, nullable=False),
        sa.Column("replies", sa.Boolean, nullable=False),
        sa.Column("attachments", sa.Text, nullable=False),
        sa.Column("refused", sa.Text, nullable=False),
        sa.Column("final_sent_at", sa.BigInteger),
    )
    due = sa.text("final_receipt AND final_sent_at IS NULL")
    op.create_index("ix_mails_final_due", "mails", ["received_at"],
                    sqlite_where=due, postgresql_where=due)
    op.create_table(
        "mail_notices",
        sa.Column("item_id", sa.String(26), primary_key=True),
        sa.Column("mail_id", sa.String(26), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
    )
    op.create_index("ix_mail_notices_mail_id", "mail_notices", ["mail_id"])


def downgrade() -> None:
    op.drop_table("mail_notices")
    op.drop_table("mails")
    op.drop_table("mail_senders")
    op.drop_table("mail_accounts")
