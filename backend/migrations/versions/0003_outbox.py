"""The transactional outbox: events to send, written with the job.

Jobs still queued get their `summary/requested` row, sent or not, so that
the relay keeps looking after them as it did before the outbox existed.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-17
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    outbox = op.create_table(
        "outbox",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "job_id",
            sa.String(26),
            sa.ForeignKey("jobs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("available_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("ix_outbox_job_id", "outbox", ["job_id"])
    op.create_index("ix_outbox_available_at", "outbox", ["available_at"])
    # Retention deletes jobs by their last change.
    op.create_index("ix_jobs_updated_at", "jobs", ["updated_at"])

    jobs = sa.table(
        "jobs",
        sa.column("id", sa.String),
        sa.column("status", sa.String),
        sa.column("event_sent_at", sa.DateTime(timezone=True)),
        sa.column("event_error", sa.Text),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    queued = op.get_bind().execute(
        sa.select(
            jobs.c.id, jobs.c.event_sent_at, jobs.c.event_error, jobs.c.created_at
        ).where(jobs.c.status == "queued")
    )
    now = datetime.now(UTC)
    rows = [
        {
            "id": job_id,
            "job_id": job_id,
            "name": "summary/requested",
            "data": {"job_id": job_id},
            "created_at": created_at,
            "available_at": now,
            "attempts": 0 if sent_at is None else 1,
            "sent_at": sent_at,
            "last_error": error,
        }
        for job_id, sent_at, error, created_at in queued
    ]
    if rows:
        op.bulk_insert(outbox, rows)


def downgrade() -> None:
    op.drop_index("ix_jobs_updated_at", "jobs")
    op.drop_index("ix_outbox_available_at", "outbox")
    op.drop_index("ix_outbox_job_id", "outbox")
    op.drop_table("outbox")
