"""FTP batches across nodes (issue #16): each open batch is leased to the node working it
(reading its rows, then following its report file); a lapsed lease lets another take it.

Revision ID: 0021_batch_leases
Revises: 0020_nodes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021_batch_leases"
down_revision = "0020_nodes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batch_leases",
        sa.Column("batch_id", sa.String(26), sa.ForeignKey("batches.id"), primary_key=True),
        sa.Column("node", sa.Text, nullable=False),
        sa.Column("lease_until", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("batch_leases")
