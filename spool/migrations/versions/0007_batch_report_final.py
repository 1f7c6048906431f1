"""Batches get a report mark apart from their state, so a failed batch's report file is
followed to final while the batch stays failed. Final batches are marked; failed ones are
not, so after the upgrade each gets its report file once.

Revision ID: 0007_batch_report_final
Revises: 0006_accepted_is_claimable
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_batch_report_final"
down_revision = "0006_accepted_is_claimable"
branch_labels = None
depends_on = None

_batches = sa.table("batches", sa.column("state", sa.Text),
                    sa.column("report_final", sa.Boolean))


def upgrade() -> None:
    op.add_column("batches", sa.Column("report_final", sa.Boolean, nullable=False,
                                       server_default=sa.false()))
    op.execute(_batches.update().where(_batches.c.state == "final")
               .values(report_final=True))


def downgrade() -> None:
    # Batch mode: SQLite drops a column by copying the table.
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("report_final")
