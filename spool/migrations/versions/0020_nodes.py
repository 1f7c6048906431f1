"""Nodes (issue #16): each running `smshub serve` process, by node name and role, with
its process, host, start and last heartbeat, for `smshub nodes` and the SQLite rule of
one node per spool.

Revision ID: 0020_nodes
Revises: 0019_consents
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_nodes"
down_revision = "0019_consents"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("role", sa.Text, primary_key=True),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("last_seen", sa.BigInteger, nullable=False),
        sa.Column("version", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("nodes")
