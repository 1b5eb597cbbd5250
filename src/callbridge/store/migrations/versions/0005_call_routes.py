"""Several instances: the facts of live calls (`call_routes`), redeemed stream tokens, and how
an instance's liveness is known (`instances.liveness`).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "call_routes",
        sa.Column("call_sid", sa.String(64), primary_key=True),
        sa.Column("direction", sa.String(32), nullable=False),
        sa.Column("from_number", sa.String(64), nullable=False),
        sa.Column("to_number", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(128), nullable=False),
        sa.Column("awaiting_answer", sa.Boolean, nullable=False),
        sa.Column("answered_by", sa.String(32)),
        sa.Column("webhook_instance", sa.String(128), nullable=False),
        sa.Column("owner", sa.String(128)),
        sa.Column("ended", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_call_routes_owner", "call_routes", ["owner"])
    op.create_table(
        "stream_tokens",
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("call_sid", sa.String(64), nullable=False),
        sa.Column("instance", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_stream_tokens_expires_at", "stream_tokens", ["expires_at"])
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("liveness", sa.String(16)))
    # The liveness sweep reads the open calls every few seconds: only those, never the history.
    op.create_index("ix_calls_open", "calls", ["instance"],
                    postgresql_where=sa.text("ended_at IS NULL"),
                    sqlite_where=sa.text("ended_at IS NULL"))


def downgrade() -> None:
    op.drop_index("ix_calls_open", "calls")
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("liveness")
    op.drop_index("ix_stream_tokens_expires_at", "stream_tokens")
    op.drop_table("stream_tokens")
    op.drop_index("ix_call_routes_owner", "call_routes")
    op.drop_table("call_routes")
