"""Read-only queries behind the console: the filtered call list and the overview's figures.

Owns the statements the JSON API does not need: filters on agent, direction, a date range and
words in the transcript, and per-day aggregates over a bounded range. The call page itself uses
`CallStore.get_call`, as the API does. On PostgreSQL the overview is aggregated in SQL (UTC days,
`percentile_disc`); on SQLite, the small embedded case, in Python over the range's rows — the
same figures either way.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import exists, or_, select, text

from callbridge.store import schema
from callbridge.store.repository import CallStore

MAX_WORDS = 5
MAX_OVERVIEW_DAYS = 92
LIST_COLUMNS = ("id", "call_sid", "direction", "from_number", "to_number", "agent", "status",
                "created_at", "duration_s", "cost_usd", "end_reason")
# what the overview counts, by event kind
COUNTED_EVENTS = {"barge_in": "barge_ins", "upstream_restored": "reconnects",
                  "upstream_gave_up": "apologies"}


@dataclass(frozen=True)
class ConsoleFilter:
    number: str | None = None
    status: str | None = None
    agent: str | None = None
    direction: str | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    words: tuple[str, ...] = ()
    before_id: int | None = None
    limit: int = 50


@dataclass
class Day:
    day: date
    calls: int = 0
    minutes: float = 0.0
    cost_usd: float = 0.0
    barge_ins: int = 0
    reconnects: int = 0
    apologies: int = 0
    latencies: list[int] = field(default_factory=list)
    fixed: tuple[int | None, int | None] | None = None  # (p50, p95) computed by the database

    @property
    def p50_ms(self) -> int | None:
        return self.fixed[0] if self.fixed is not None else percentile(self.latencies, 0.5)

    @property
    def p95_ms(self) -> int | None:
        return self.fixed[1] if self.fixed is not None else percentile(self.latencies, 0.95)


def percentile(values: list[int], q: float) -> int | None:
    """The smallest value with at least `q` of the values at or below it (`percentile_disc`)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _like(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_calls(store: CallStore, query: ConsoleFilter) -> list[dict[str, Any]]:
    """Calls matching every filter, newest first; a page of `limit` before `before_id`."""
    calls, turns = schema.calls, schema.turns
    statement = (select(*(calls.c[name] for name in LIST_COLUMNS))
                 .order_by(calls.c.id.desc()).limit(query.limit))
    if query.number:
        statement = statement.where(or_(calls.c.from_number == query.number,
                                        calls.c.to_number == query.number))
    for column, value in ((calls.c.status, query.status), (calls.c.agent, query.agent),
                          (calls.c.direction, query.direction)):
        if value:
            statement = statement.where(column == value)
    if query.since is not None:
        statement = statement.where(calls.c.created_at >= query.since)
    if query.until is not None:
        statement = statement.where(calls.c.created_at < query.until)
    for word in query.words[:MAX_WORDS]:
        statement = statement.where(exists().where(
            turns.c.call_sid == calls.c.call_sid,
            turns.c.text.ilike(_like(word), escape="\\")))
    if query.before_id is not None:
        statement = statement.where(calls.c.id < query.before_id)
    async with store.engine.connect() as connection:
        return [_plain(row._mapping) for row in await connection.execute(statement)]


async def distinct_values(store: CallStore) -> dict[str, list[str]]:
    """The agents and directions that occur, for the filter form's choices."""
    calls = schema.calls
    out: dict[str, list[str]] = {}
    async with store.engine.connect() as connection:
        for name in ("agent", "direction", "status"):
            column = calls.c[name]
            rows = await connection.execute(select(column).distinct().order_by(column).limit(100))
            out[name] = [row[0] for row in rows if row[0]]
    return out


async def overview(store: CallStore, first: date, last: date) -> list[Day]:
    """One `Day` per calendar day (UTC) from `first` to `last`, both included."""
    if last < first:
        first, last = last, first
    last = min(last, first + timedelta(days=MAX_OVERVIEW_DAYS - 1))
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    days = {first + timedelta(days=i): Day(first + timedelta(days=i))
            for i in range((last - first).days + 1)}
    if store.engine.dialect.name == "postgresql":
        await _overview_in_sql(store, days, start, end)
        return list(days.values())
    calls, events = schema.calls, schema.call_events
    async with store.engine.connect() as connection:
        rows = await connection.execute(
            select(calls.c.created_at, calls.c.duration_s, calls.c.cost_usd)
            .where(calls.c.created_at >= start, calls.c.created_at < end))
        for created_at, duration_s, cost_usd in rows:
            day = days.get(_utc(created_at).date())
            if day is not None:
                day.calls += 1
                day.minutes += (duration_s or 0.0) / 60
                day.cost_usd += cost_usd or 0.0
        rows = await connection.execute(
            select(events.c.kind, events.c.at, events.c.detail)
            .where(events.c.at >= start, events.c.at < end,
                   events.c.kind.in_([*COUNTED_EVENTS, "turn_latency"])))
        for kind, at, detail in rows:
            day = days.get(_utc(at).date())
            if day is None:
                continue
            if kind == "turn_latency":
                ms = detail.get("ms") if isinstance(detail, dict) else None
                if isinstance(ms, int | float):
                    day.latencies.append(int(ms))
            else:
                name = COUNTED_EVENTS[kind]
                setattr(day, name, getattr(day, name) + 1)
    return list(days.values())


_PG_CALLS = text("""
    SELECT (created_at AT TIME ZONE 'UTC')::date, count(*), coalesce(sum(duration_s), 0),
           coalesce(sum(cost_usd), 0)
    FROM calls WHERE created_at >= :start AND created_at < :end GROUP BY 1""")
_PG_COUNTS = text("""
    SELECT (at AT TIME ZONE 'UTC')::date, kind, count(*) FROM call_events
    WHERE kind IN ('barge_in', 'upstream_restored', 'upstream_gave_up')
      AND at >= :start AND at < :end GROUP BY 1, 2""")
_PG_LATENCY = text("""
    SELECT day, percentile_disc(0.5) WITHIN GROUP (ORDER BY ms),
           percentile_disc(0.95) WITHIN GROUP (ORDER BY ms)
    FROM (SELECT (at AT TIME ZONE 'UTC')::date AS day,
                 CASE WHEN json_typeof(detail -> 'ms') = 'number'
                      THEN (detail ->> 'ms')::float END AS ms
          FROM call_events WHERE kind = 'turn_latency' AND at >= :start AND at < :end) AS t
    GROUP BY day""")


async def _overview_in_sql(store: CallStore, days: dict[date, Day], start: datetime,
                           end: datetime) -> None:
    bounds = {"start": start, "end": end}
    async with store.engine.connect() as connection:
        for day, calls, seconds, cost in await connection.execute(_PG_CALLS, bounds):
            if day in days:
                days[day].calls, days[day].minutes = int(calls), float(seconds) / 60
                days[day].cost_usd = float(cost)
        for day, kind, count in await connection.execute(_PG_COUNTS, bounds):
            if day in days:
                setattr(days[day], COUNTED_EVENTS[kind], int(count))
        for day, p50, p95 in await connection.execute(_PG_LATENCY, bounds):
            if day in days:
                days[day].fixed = (None if p50 is None else int(p50),
                                   None if p95 is None else int(p95))


def group_days(days: list[Day]) -> dict[str, list[Any]]:
    """The overview's series, by name, for the charts."""
    series: dict[str, list[Any]] = defaultdict(list)
    for day in days:
        series["day"].append(day.day.isoformat())
        series["calls"].append(day.calls)
        series["minutes"].append(round(day.minutes, 1))
        series["cost_usd"].append(round(day.cost_usd, 4))
        series["p50_ms"].append(day.p50_ms)
        series["p95_ms"].append(day.p95_ms)
        series["barge_ins"].append(day.barge_ins)
        series["reconnects"].append(day.reconnects)
        series["apologies"].append(day.apologies)
    return dict(series)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _plain(mapping: Any) -> dict[str, Any]:
    return {key: (_utc(value) if isinstance(value, datetime) else value)
            for key, value in mapping.items()}
