"""The executor's ids for each send of an outbox event.

The executor gives every event it receives an id of its own, and its REST
API finds a run by that id, not by the id Digest chose. The reconciler
(backend/reconcile.py) asks for the runs of these ids to learn how a job's
run ended. Rows sent before this column existed hold NULL: the reconciler
treats them as sent with no known run.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-20
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("executor_event_ids", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("executor_event_ids")
