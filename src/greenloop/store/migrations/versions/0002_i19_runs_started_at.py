"""index runs by start time: the dashboard and `greenloop history` list runs newest first

Revision ID: 0002_i19_runs_started_at
Revises: 0001
Create Date: 2026-11-30 13:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0002_i19_runs_started_at"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_started_at", "runs", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_started_at", table_name="runs")
