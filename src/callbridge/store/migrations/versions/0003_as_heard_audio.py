"""The as-heard recording's file and length on the call.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("audio_path", sa.Text))
        batch.add_column(sa.Column("audio_seconds", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("audio_seconds")
        batch.drop_column("audio_path")
