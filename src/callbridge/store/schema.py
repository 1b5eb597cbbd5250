"""The tables of the call record (SQLAlchemy Core). Alembic migrations create them.

Natural keys make every write idempotent: a call is unique by CallSid, a turn by (CallSid, item
id, role), a tool call by (CallSid, call id), an event by (CallSid, sequence number), usage by
(CallSid, response id). There are no foreign keys: records may arrive in any order (a status
callback before the voice webhook's record), and each row stands on its CallSid.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

calls = Table(
    "calls", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_sid", String(64), nullable=False, unique=True),
    Column("direction", String(32), nullable=False, default="inbound"),
    Column("from_number", String(64), nullable=False, default=""),
    Column("to_number", String(64), nullable=False, default=""),
    Column("agent", String(128), nullable=False, default=""),
    Column("status", String(32), nullable=False, default="ringing"),
    Column("status_rank", Integer, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("answered_at", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True)),
    Column("duration_s", Float),
    Column("end_reason", String(256)),
    Column("model", String(64), nullable=False, default=""),
    Column("voice", String(64), nullable=False, default=""),
    Column("cost_usd", Float, nullable=False, default=0.0),
    Column("recording_sid", String(64)),
    Column("recording_url", Text),
    Column("stream_sid", String(64)),
    Column("audio_path", Text),  # the as-heard recording, when the agent makes one
    Column("audio_seconds", Float),
    Column("instance", String(128), nullable=False, default=""),
)
Index("ix_calls_created_at", calls.c.created_at)
Index("ix_calls_status", calls.c.status)
Index("ix_calls_open", calls.c.instance, postgresql_where=calls.c.ended_at.is_(None),
      sqlite_where=calls.c.ended_at.is_(None))  # 0005: the liveness sweep's open calls

turns = Table(
    "turns", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_sid", String(64), nullable=False, index=True),
    Column("item_id", String(128), nullable=False),
    Column("role", String(16), nullable=False),
    Column("text", Text, nullable=False, default=""),
    Column("heard", Text, nullable=False, default=""),
    Column("interrupted", Boolean, nullable=False, default=False),
    Column("started_ms", Integer, nullable=False, default=0),
    Column("ended_ms", Integer, nullable=False, default=0),
    UniqueConstraint("call_sid", "item_id", "role", name="uq_turns_call_item_role"),
)

tool_calls = Table(
    "tool_calls", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_sid", String(64), nullable=False, index=True),
    Column("call_id", String(128), nullable=False),
    Column("name", String(128), nullable=False),
    Column("arguments", Text, nullable=False, default=""),
    Column("result", Text),
    Column("error", Text),
    Column("duration_ms", Integer, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("call_sid", "call_id", name="uq_tool_calls_call_id"),
)

call_events = Table(
    "call_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_sid", String(64), nullable=False, index=True),
    Column("seq", Integer, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("detail", JSON, nullable=False, default=dict),
    Column("at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("call_sid", "seq", name="uq_call_events_seq"),
)
Index("ix_call_events_kind_at", call_events.c.kind, call_events.c.at)  # 0004: the overview
# 0004: words in the console's call list, through a trigram index (PostgreSQL only)
Index("ix_turns_text_trgm", turns.c.text, postgresql_using="gin",
      postgresql_ops={"text": "gin_trgm_ops"}).ddl_if(dialect="postgresql")
POSTGRESQL_ONLY = frozenset({"ix_turns_text_trgm"})


def include_object(dialect: str) -> Callable[..., bool]:
    """Alembic's `include_object` for comparing a `dialect` database with these tables: the
    PostgreSQL-only index is not expected anywhere else."""
    def include(obj: object, name: str | None, type_: str, reflected: bool,
                compare_to: object) -> bool:
        return dialect == "postgresql" or type_ != "index" or name not in POSTGRESQL_ONLY
    return include

usage = Table(
    "usage", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_sid", String(64), nullable=False, index=True),
    Column("response_id", String(128), nullable=False),
    Column("input_tokens", Integer, nullable=False, default=0),
    Column("output_tokens", Integer, nullable=False, default=0),
    Column("input_text_tokens", Integer, nullable=False, default=0),
    Column("input_audio_tokens", Integer, nullable=False, default=0),
    Column("input_cached_tokens", Integer, nullable=False, default=0),
    Column("output_text_tokens", Integer, nullable=False, default=0),
    Column("output_audio_tokens", Integer, nullable=False, default=0),
    Column("cost_usd", Float, nullable=False, default=0.0),
    Column("detail", JSON, nullable=False, default=dict),
    UniqueConstraint("call_sid", "response_id", name="uq_usage_response"),
)

instances = Table(
    "instances", metadata,
    Column("id", String(128), primary_key=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    # "lock": alive exactly while it holds its PostgreSQL advisory lock (0005); else heartbeats
    Column("liveness", String(16)),
)

# ---------------------------------------------------------------- post-call analytics (0002)
# Jobs are the outbox: written in the transaction that ends the call, unique by (CallSid, kind),
# claimed by workers with a lease (`locked_by`, `locked_until`). See callbridge.analytics.

jobs = Table(
    "jobs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_sid", String(64), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("state", String(16), nullable=False, default="pending"),  # pending|running|done|dead
    Column("attempts", Integer, nullable=False, default=0),
    Column("run_after", DateTime(timezone=True), nullable=False),
    Column("locked_by", String(128)),
    Column("locked_until", DateTime(timezone=True)),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("call_sid", "kind", name="uq_jobs_call_kind"),
)
Index("ix_jobs_state_run_after", jobs.c.state, jobs.c.run_after)

analyses = Table(
    "analyses", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_sid", String(64), nullable=False, unique=True),
    Column("model", String(64), nullable=False),
    Column("summary", Text, nullable=False),
    Column("sentiment", Float, nullable=False),
    Column("intent", Text, nullable=False),
    Column("lead_score", Integer, nullable=False),
    Column("action_items", JSON, nullable=False, default=list),
    Column("custom", JSON, nullable=False, default=dict),
    Column("note", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_sid", String(64), nullable=False, index=True),
    Column("event", String(64), nullable=False),
    Column("url", Text, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
    Column("delivered", Boolean, nullable=False, default=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

# ---------------------------------------------------------------- several instances (0005)
# What every instance must know about a live call, wherever its webhook, media socket and
# callbacks land (callbridge.store.routes owns their SQL).

call_routes = Table(
    "call_routes", metadata,
    Column("call_sid", String(64), primary_key=True),
    Column("direction", String(32), nullable=False, default="inbound"),
    Column("from_number", String(64), nullable=False, default=""),
    Column("to_number", String(64), nullable=False, default=""),
    Column("agent", String(128), nullable=False, default=""),
    Column("awaiting_answer", Boolean, nullable=False, default=False),
    Column("answered_by", String(32)),  # the AMD verdict, whichever instance it reached
    Column("webhook_instance", String(128), nullable=False, default=""),
    Column("owner", String(128)),  # the instance carrying the media stream
    Column("ended", Boolean, nullable=False, default=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("ix_call_routes_owner", call_routes.c.owner)

stream_tokens = Table(
    "stream_tokens", metadata,
    Column("nonce", String(64), primary_key=True),  # a redeemed token's nonce: never again
    Column("call_sid", String(64), nullable=False),
    Column("instance", String(128), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)
Index("ix_stream_tokens_expires_at", stream_tokens.c.expires_at)
