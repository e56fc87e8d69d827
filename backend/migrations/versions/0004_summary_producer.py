"""Which summariser (and which model) produced a job's summary.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL for jobs that have not succeeded, and for every job summarised
    # before this column existed (they all came from the extractive one,
    # but saying so would be a guess written as a fact).
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("summarizer", sa.String(16)))
        batch.add_column(sa.Column("summary_model", sa.String(200)))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("summary_model")
        batch.drop_column("summarizer")
