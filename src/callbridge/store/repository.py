"""Reading and writing the call record in one database.

Owns every SQL statement: applying a batch of records in one transaction (idempotent upserts by
natural key, status changes that never move a call backwards), the queries behind the JSON API,
start-up recovery of calls left open by a crashed instance, and instance heartbeats.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, case, func, literal, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from callbridge.store import schema
from callbridge.store.database import create_engine
from callbridge.store.jobs import add_outbox
from callbridge.store.records import (
    AudioSaved,
    CallAnswered,
    CallEnded,
    CallOpened,
    EventRecorded,
    Record,
    RecordingStored,
    StatusChanged,
    ToolRecorded,
    TurnRecorded,
    UsageRecorded,
    without_nul,
)

TERMINAL = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
STATUS_RANK = {"queued": 0, "initiated": 1, "ringing": 2, "in-progress": 3,
               **{status: 4 for status in TERMINAL}}
IN_PROGRESS_RANK = 3
ENDED_RANK = 4


def utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


@dataclass(frozen=True)
class CallFilter:
    since: datetime | None = None
    status: str | None = None
    number: str | None = None
    before_id: int | None = None
    limit: int = 50


class CallStore:
    """The call record in one database (any URL `create_engine` accepts)."""

    def __init__(self, database_url: str, engine: AsyncEngine | None = None) -> None:
        self.database_url = database_url
        self.engine = engine or create_engine(database_url)
        self._postgres = self.engine.dialect.name == "postgresql"

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> None:
        """Raise unless the database answers."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    # ---------------------------------------------------------------- writing

    async def apply(self, records: Sequence[Record]) -> None:
        """Apply records in order, in one transaction. Applying them again changes nothing.
        U+0000 is taken out of text fields first (`without_nul`)."""
        async with self.engine.begin() as connection:
            pending: list[Record] = []
            for record in map(without_nul, records):
                if pending and type(pending[0]) is not type(record):
                    await self._apply_group(connection, pending)
                    pending = []
                pending.append(record)
            if pending:
                await self._apply_group(connection, pending)

    async def _apply_group(self, connection: AsyncConnection, group: list[Record]) -> None:
        inserts = _INSERTS.get(type(group[0]))
        if inserts is not None:
            table, to_row = inserts
            await self._insert_new(connection, table, [to_row(r) for r in group])
        else:
            for record in group:
                await self._apply_call_change(connection, record)

    async def _insert_new(self, connection: AsyncConnection, table: Table,
                          rows: list[dict[str, Any]]) -> None:
        insert = pg_insert(table) if self._postgres else sqlite_insert(table)
        await connection.execute(insert.on_conflict_do_nothing(), rows)

    async def _apply_call_change(self, connection: AsyncConnection, record: Record) -> None:
        calls = schema.calls
        if isinstance(record, CallOpened):
            await self._open_call(connection, record)
        elif isinstance(record, StatusChanged):
            await self._ensure_call(connection, record.call_sid, record.at, record.direction,
                                    record.from_number, record.to_number)
            rank = STATUS_RANK.get(record.status, 0)
            values: dict[str, Any] = {"status": record.status, "status_rank": rank}
            if rank == IN_PROGRESS_RANK:
                values["answered_at"] = func.coalesce(calls.c.answered_at, utc(record.at))
            if rank == ENDED_RANK:
                values["ended_at"] = func.coalesce(calls.c.ended_at, utc(record.at))
                values["end_reason"] = func.coalesce(calls.c.end_reason, record.status)
            await connection.execute(update(calls).where(
                calls.c.call_sid == record.call_sid, calls.c.status_rank < rank).values(values))
            if record.duration_s is not None:  # Twilio's billed duration is authoritative
                await connection.execute(update(calls).where(
                    calls.c.call_sid == record.call_sid).values(duration_s=record.duration_s))
        elif isinstance(record, CallAnswered):
            await connection.execute(update(calls).where(calls.c.call_sid == record.call_sid)
                                     .values(stream_sid=record.stream_sid,
                                             answered_at=func.coalesce(calls.c.answered_at,
                                                                       utc(record.at))))
            await connection.execute(update(calls).where(
                calls.c.call_sid == record.call_sid, calls.c.status_rank < IN_PROGRESS_RANK,
            ).values(status="in-progress", status_rank=IN_PROGRESS_RANK))
        elif isinstance(record, CallEnded):
            await self._end_call(connection, record)
        elif isinstance(record, AudioSaved):
            await connection.execute(update(calls).where(calls.c.call_sid == record.call_sid)
                                     .values(audio_path=record.path,
                                             audio_seconds=record.seconds))
        elif isinstance(record, RecordingStored) and record.status == "completed":
            await connection.execute(update(calls).where(calls.c.call_sid == record.call_sid)
                                     .values(recording_sid=record.recording_sid,
                                             recording_url=record.url))

    async def _open_call(self, connection: AsyncConnection, record: CallOpened) -> None:
        insert = pg_insert(schema.calls) if self._postgres else sqlite_insert(schema.calls)
        row = {
            "call_sid": record.call_sid, "direction": record.direction,
            "from_number": record.from_number, "to_number": record.to_number,
            "agent": record.agent, "model": record.model, "voice": record.voice,
            "instance": record.instance, "status": "ringing", "status_rank": STATUS_RANK["ringing"],
            "created_at": utc(record.at), "cost_usd": 0.0,
        }
        filled = {key: getattr(insert.excluded, key)
                  for key in ("agent", "model", "voice", "instance", "from_number", "to_number",
                              "direction")}
        await connection.execute(insert.values(row).on_conflict_do_update(
            index_elements=["call_sid"], set_=filled))

    async def _ensure_call(self, connection: AsyncConnection, call_sid: str, at: float,
                           direction: str, from_number: str, to_number: str) -> None:
        await self._insert_new(connection, schema.calls, [{
            "call_sid": call_sid, "direction": direction or "inbound",
            "from_number": from_number, "to_number": to_number, "agent": "", "model": "",
            "voice": "", "instance": "", "status": "queued", "status_rank": -1,
            "created_at": utc(at), "cost_usd": 0.0,
        }])

    async def _end_call(self, connection: AsyncConnection, record: CallEnded) -> None:
        calls = schema.calls
        await connection.execute(update(calls).where(calls.c.call_sid == record.call_sid).values(
            ended_at=func.coalesce(calls.c.ended_at, utc(record.at)),
            end_reason=func.coalesce(calls.c.end_reason, record.reason),
            duration_s=func.coalesce(calls.c.duration_s, record.duration_s),
            cost_usd=record.cost_usd,
            status=case((calls.c.status_rank < ENDED_RANK, literal("completed")),
                        else_=calls.c.status),
            status_rank=case((calls.c.status_rank < ENDED_RANK, literal(ENDED_RANK)),
                             else_=calls.c.status_rank),
        ))
        # The outbox: post-call jobs are committed with the call's end, or not at all.
        await add_outbox(connection, [record.call_sid], record.at)

    # ---------------------------------------------------------------- recovery

    async def heartbeat(self, instance: str, now: float) -> None:
        insert = pg_insert(schema.instances) if self._postgres else sqlite_insert(schema.instances)
        statement = insert.values(id=instance, started_at=utc(now), last_seen=utc(now))
        async with self.engine.begin() as connection:
            await connection.execute(statement.on_conflict_do_update(
                index_elements=["id"], set_={"last_seen": statement.excluded.last_seen}))

    async def recover(self, instance: str, now: float, stale_after_s: float = 60.0) -> list[str]:
        """Close calls left open by this instance's previous life or by an instance that stopped
        heartbeating; returns their CallSids. Their end reason becomes `interrupted`."""
        calls, instances = schema.calls, schema.instances
        stale = select(instances.c.id).where(instances.c.last_seen < utc(now - stale_after_s))
        condition = calls.c.ended_at.is_(None) & (
            (calls.c.instance == instance) | calls.c.instance.in_(stale)
        )
        async with self.engine.begin() as connection:
            sids = [row[0] for row in await connection.execute(
                select(calls.c.call_sid).where(condition))]
            if sids:
                await connection.execute(update(calls).where(calls.c.call_sid.in_(sids)).values(
                    ended_at=utc(now), end_reason="interrupted",
                    status=case((calls.c.status_rank < ENDED_RANK, literal("completed")),
                                else_=calls.c.status),
                    status_rank=ENDED_RANK,
                ))
                await add_outbox(connection, sids, now)
        return sids

    # ---------------------------------------------------------------- reading

    async def list_calls(self, query: CallFilter) -> list[dict[str, Any]]:
        calls = schema.calls
        statement = select(calls).order_by(calls.c.id.desc()).limit(query.limit)
        if query.since is not None:
            statement = statement.where(calls.c.created_at >= query.since)
        if query.status:
            statement = statement.where(calls.c.status == query.status)
        if query.number:
            statement = statement.where(or_(calls.c.from_number == query.number,
                                            calls.c.to_number == query.number))
        if query.before_id is not None:
            statement = statement.where(calls.c.id < query.before_id)
        async with self.engine.connect() as connection:
            return [_call_row(row._mapping) for row in await connection.execute(statement)]

    async def get_call(self, call_sid: str) -> dict[str, Any] | None:
        """The call with its transcript, tool calls, events, usage, analysis (or None) and
        webhook delivery attempts; None when there is no such call."""
        async with self.engine.connect() as connection:
            row = (await connection.execute(
                select(schema.calls).where(schema.calls.c.call_sid == call_sid))).first()
            if row is None:
                return None
            call = _call_row(row._mapping)
            call["transcript"] = await _rows(connection, schema.turns, call_sid,
                                             schema.turns.c.started_ms, schema.turns.c.id)
            call["tool_calls"] = await _rows(connection, schema.tool_calls, call_sid,
                                             schema.tool_calls.c.id)
            call["events"] = await _rows(connection, schema.call_events, call_sid,
                                         schema.call_events.c.seq)
            usage_rows = await _rows(connection, schema.usage, call_sid, schema.usage.c.id)
            analyses = await _rows(connection, schema.analyses, call_sid, schema.analyses.c.id)
            call["analysis"] = analyses[0] if analyses else None
            call["webhook_deliveries"] = await _rows(connection, schema.webhook_deliveries,
                                                     call_sid, schema.webhook_deliveries.c.id)
        call["usage"] = {"responses": usage_rows, "totals": _usage_totals(usage_rows)}
        return call


async def _rows(connection: AsyncConnection, table: Table, call_sid: str,
                *order: Any) -> list[dict[str, Any]]:
    result = await connection.execute(
        select(table).where(table.c.call_sid == call_sid).order_by(*order))
    rows = []
    for row in result:
        values = {k: _json_value(v) for k, v in row._mapping.items() if k not in ("id", "call_sid")}
        rows.append(values)
    return rows


def _call_row(mapping: Any) -> dict[str, Any]:
    values = {k: _json_value(v) for k, v in mapping.items() if k != "status_rank"}
    return values


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:  # SQLite keeps no zone; everything is stored in UTC
            value = value.replace(tzinfo=UTC)
        return value.isoformat()
    return value


def _usage_totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("input_tokens", "output_tokens", "input_text_tokens", "input_audio_tokens",
            "input_cached_tokens", "output_text_tokens", "output_audio_tokens")
    totals: dict[str, Any] = {key: sum(int(r[key]) for r in rows) for key in keys}
    totals["cost_usd"] = round(sum(float(r["cost_usd"]) for r in rows), 6)
    return totals


def _turn_row(r: TurnRecorded) -> dict[str, Any]:
    return {"call_sid": r.call_sid, "item_id": r.item_id, "role": r.role, "text": r.text,
            "heard": r.heard, "interrupted": r.interrupted, "started_ms": r.started_ms,
            "ended_ms": r.ended_ms}


def _event_row(r: EventRecorded) -> dict[str, Any]:
    return {"call_sid": r.call_sid, "seq": r.seq, "kind": r.kind, "detail": r.detail,
            "at": utc(r.at)}


def _tool_row(r: ToolRecorded) -> dict[str, Any]:
    return {"call_sid": r.call_sid, "call_id": r.call_id, "name": r.name,
            "arguments": r.arguments, "result": r.result, "error": r.error,
            "duration_ms": r.duration_ms, "created_at": utc(r.at)}


def _usage_row(r: UsageRecorded) -> dict[str, Any]:
    inputs = _mapping(r.usage.get("input_token_details"))
    outputs = _mapping(r.usage.get("output_token_details"))
    return {
        "call_sid": r.call_sid, "response_id": r.response_id,
        "input_tokens": _count(r.usage, "input_tokens"),
        "output_tokens": _count(r.usage, "output_tokens"),
        "input_text_tokens": _count(inputs, "text_tokens"),
        "input_audio_tokens": _count(inputs, "audio_tokens"),
        "input_cached_tokens": _count(inputs, "cached_tokens"),
        "output_text_tokens": _count(outputs, "text_tokens"),
        "output_audio_tokens": _count(outputs, "audio_tokens"),
        "cost_usd": r.cost_usd, "detail": r.usage,
    }


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _count(values: dict[str, Any], key: str) -> int:
    """A token count from the model's usage object; anything but a whole number counts 0."""
    value = values.get(key, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


_INSERTS: dict[type, tuple[Table, Callable[[Any], dict[str, Any]]]] = {
    TurnRecorded: (schema.turns, _turn_row),
    EventRecorded: (schema.call_events, _event_row),
    UsageRecorded: (schema.usage, _usage_row),
    ToolRecorded: (schema.tool_calls, _tool_row),
}
