"""collections: node ids per test file content, for blocked phases

Revision ID: 0003_i16_collections
Revises: 0002_i19_runs_started_at
Create Date: 2026-11-30 12:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_i16_collections"
down_revision = "0002_i19_runs_started_at"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "collections",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("file", sa.Text(), nullable=False),
        sa.Column("nodeids", sa.JSON(), nullable=False),
        sa.Column("collected_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index(op.f("ix_collections_file"), "collections", ["file"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_collections_file"), table_name="collections")
    op.drop_table("collections")
