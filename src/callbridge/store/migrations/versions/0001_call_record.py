"""The call record: calls, turns, tool calls, events, usage, instances.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("call_sid", sa.String(64), nullable=False, unique=True),
        sa.Column("direction", sa.String(32), nullable=False),
        sa.Column("from_number", sa.String(64), nullable=False),
        sa.Column("to_number", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(128), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("status_rank", sa.Integer, nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("answered_at", _TZ),
        sa.Column("ended_at", _TZ),
        sa.Column("duration_s", sa.Float),
        sa.Column("end_reason", sa.String(256)),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("voice", sa.String(64), nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("recording_sid", sa.String(64)),
        sa.Column("recording_url", sa.Text),
        sa.Column("stream_sid", sa.String(64)),
        sa.Column("instance", sa.String(128), nullable=False),
    )
    op.create_index("ix_calls_created_at", "calls", ["created_at"])
    op.create_index("ix_calls_status", "calls", ["status"])
    op.create_table(
        "turns",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("call_sid", sa.String(64), nullable=False),
        sa.Column("item_id", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("heard", sa.Text, nullable=False),
        sa.Column("interrupted", sa.Boolean, nullable=False),
        sa.Column("started_ms", sa.Integer, nullable=False),
        sa.Column("ended_ms", sa.Integer, nullable=False),
        sa.UniqueConstraint("call_sid", "item_id", "role", name="uq_turns_call_item_role"),
    )
    op.create_index("ix_turns_call_sid", "turns", ["call_sid"])
    op.create_table(
        "tool_calls",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("call_sid", sa.String(64), nullable=False),
        sa.Column("call_id", sa.String(128), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("arguments", sa.Text, nullable=False),
        sa.Column("result", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.UniqueConstraint("call_sid", "call_id", name="uq_tool_calls_call_id"),
    )
    op.create_index("ix_tool_calls_call_sid", "tool_calls", ["call_sid"])
    op.create_table(
        "call_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("call_sid", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("at", _TZ, nullable=False),
        sa.UniqueConstraint("call_sid", "seq", name="uq_call_events_seq"),
    )
    op.create_index("ix_call_events_call_sid", "call_events", ["call_sid"])
    op.create_table(
        "usage",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("call_sid", sa.String(64), nullable=False),
        sa.Column("response_id", sa.String(128), nullable=False),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("input_text_tokens", sa.Integer, nullable=False),
        sa.Column("input_audio_tokens", sa.Integer, nullable=False),
        sa.Column("input_cached_tokens", sa.Integer, nullable=False),
        sa.Column("output_text_tokens", sa.Integer, nullable=False),
        sa.Column("output_audio_tokens", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.UniqueConstraint("call_sid", "response_id", name="uq_usage_response"),
    )
    op.create_index("ix_usage_call_sid", "usage", ["call_sid"])
    op.create_table(
        "instances",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("started_at", _TZ, nullable=False),
        sa.Column("last_seen", _TZ, nullable=False),
    )


def downgrade() -> None:
    for table in ("instances", "usage", "call_events", "tool_calls", "turns", "calls"):
        op.drop_table(table)
