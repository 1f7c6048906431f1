"""Opt-outs (WASPA): each account's opt-out list and the operator's global block list
(account_id NULL) in one table, and each account's opt-out settings.

Revision ID: 0015_optouts
Revises: 0014_webhooks
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_optouts"
down_revision = "0014_webhooks"
branch_labels = None
depends_on = None

_GLOBAL = sa.text("account_id IS NULL")
_ACCOUNTS = sa.text("account_id IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "optouts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id")),
        sa.Column("number", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("method", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("inbound_id", sa.String(26)),
    )
    op.create_index("ix_optouts_number", "optouts", ["number"])
    op.create_index("ux_optouts_account_number", "optouts", ["account_id", "number"],
                    unique=True, sqlite_where=_ACCOUNTS, postgresql_where=_ACCOUNTS)
    op.create_index("ux_optouts_global_number", "optouts", ["number"], unique=True,
                    sqlite_where=_GLOBAL, postgresql_where=_GLOBAL)
    op.create_index("ix_optouts_account_page", "optouts", ["account_id", "id"])
    op.create_table(
        "optout_settings",
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("confirm", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("optout_settings")
    for name in ("ix_optouts_account_page", "ux_optouts_global_number",
                 "ux_optouts_account_number", "ix_optouts_number"):
        op.drop_index(name, table_name="optouts")
    op.drop_table("optouts")
