"""periodic runs: each periodic task's run claimed once per period across all hosts

Revision ID: 0009
Revises: 0008

The scheduler of every job worker queues the periodic tasks, so with workers on
several hosts each period is queued once per host; the first copy to start inserts
(task, period_start) here and the others, finding the row, skip (app/jobs.py).
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "periodic_runs",
        sa.Column("task", sa.String(length=200), nullable=False),
        sa.Column("period_start", sa.DateTime(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("task", "period_start", name=op.f("pk_periodic_runs")),
    )


def downgrade():
    op.drop_table("periodic_runs")
