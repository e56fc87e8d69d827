"""Owners, URL sources and the per-job event log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        # Jobs made before owners existed get "": no token has that `sub`.
        batch.add_column(
            sa.Column("owner", sa.String(255), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("source_url", sa.Text))
        batch.add_column(
            sa.Column("version", sa.Integer, nullable=False, server_default="0")
        )
        batch.create_index("ix_jobs_owner", ["owner"])
    op.create_table(
        "job_events",
        sa.Column(
            "job_id",
            sa.String(26),
            sa.ForeignKey("jobs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("done", sa.Integer, nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("step", sa.String(100)),
    )


def downgrade() -> None:
    op.drop_table("job_events")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_owner")
        batch.drop_column("version")
        batch.drop_column("source_url")
        batch.drop_column("owner")
