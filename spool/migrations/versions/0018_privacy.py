"""WASPA and POPIA (issue #15): each account's rule for marketing messages without an
opt-out instruction (append one, or refuse), and the privacy log: text purges and
erasures, when, what and by whom.

Revision ID: 0018_privacy
Revises: 0017_idempotency_keys
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_privacy"
down_revision = "0017_idempotency_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("marketing_optout", sa.Text, nullable=False,
                                   server_default="append"))
    op.create_table(
        "privacy_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  primary_key=True),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("subject", sa.Text),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("privacy_log")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("marketing_optout")
