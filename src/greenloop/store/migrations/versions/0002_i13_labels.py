"""labels: a person's verdict on a cluster or a test (greenloop label)

Revision ID: 0002_i13_labels
Revises: 0003_i16_collections
Create Date: 2026-11-30 13:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_i13_labels"
down_revision = "0003_i16_collections"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "labels",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("target_kind", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("labelled_by", sa.String(length=200), nullable=False),
        sa.Column("labelled_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("labels")
