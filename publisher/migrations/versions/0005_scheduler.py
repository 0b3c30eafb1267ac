"""scheduler: APScheduler's job store and the weekly digest runs

Revision ID: 0005
Revises: 0002
Create Date: 2026-11-27 15:00:00

scheduler_jobs has exactly the shape of APScheduler 3's SQLAlchemyJobStore table (it is only
created here, so the schema stays in one history); digest_runs records each weekly digest job
for (region, week) so that a new leader can finish the work of one that died mid-job.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import publisher.models

revision = "0005"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scheduler_jobs",
        sa.Column("id", sa.String(length=191), nullable=False),
        sa.Column("next_run_time", sa.Float(25), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_scheduler_jobs_next_run_time", "scheduler_jobs", ["next_run_time"], unique=False
    )
    op.create_table(
        "digest_runs",
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("week", sa.String(length=8), nullable=False),
        sa.Column("fire_time", publisher.models.UTCDateTime(), nullable=False),
        sa.Column("started", publisher.models.UTCDateTime(), nullable=False),
        sa.Column("finished", publisher.models.UTCDateTime(), nullable=True),
        sa.Column("runner", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("queued", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["region"], ["regions.slug"]),
        sa.PrimaryKeyConstraint("region", "week"),
    )


def downgrade() -> None:
    op.drop_table("digest_runs")
    op.drop_index("ix_scheduler_jobs_next_run_time", table_name="scheduler_jobs")
    op.drop_table("scheduler_jobs")
