"""Which instances hold live calls, and what a dead instance left behind.

Owns the queries the liveness sweep makes (`server.cluster`): the instances other than this one
that hold calls not yet ended (by `call_routes.owner`, else `calls.instance`), the open calls of
one instance with what is needed to close them (when answered, what their responses cost), and
the instances that heartbeated recently (an instance sharing a SQLite file says so), and
registering an instance whose liveness is its PostgreSQL advisory lock (`register`, PostgreSQL
only). Closing the
calls goes through the call record's usual `CallEnded`, so the post-call jobs follow as always.
The heartbeat itself is `CallStore.heartbeat`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from callbridge.store.schema import call_routes, calls, instances, usage


@dataclass(frozen=True, slots=True)
class OpenCall:
    call_sid: str
    answered_at: float | None
    cost_usd: float


def _holder() -> ColumnElement[str]:
    return func.coalesce(call_routes.c.owner, calls.c.instance)


class InstanceStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def holders(self, instance: str) -> set[str]:
        """Instances other than `instance` with calls open in the record, or a heartbeat row."""
        holder = _holder()
        open_calls = (select(holder).select_from(calls.outerjoin(
            call_routes, call_routes.c.call_sid == calls.c.call_sid))
            .where(calls.c.ended_at.is_(None)).distinct())
        async with self._engine.connect() as connection:
            found = {row[0] for row in await connection.execute(open_calls)}
            found |= {row[0] for row in await connection.execute(select(instances.c.id))}
        found.discard(instance)
        found.discard("")
        found.discard(None)
        return found

    async def open_calls(self, instance: str) -> list[OpenCall]:
        """Calls `instance` carried (or described, without a stream elsewhere) not yet ended."""
        cost = (select(func.coalesce(func.sum(usage.c.cost_usd), 0.0))
                .where(usage.c.call_sid == calls.c.call_sid).scalar_subquery())
        statement = (select(calls.c.call_sid, calls.c.answered_at, cost)
                     .select_from(calls.outerjoin(
                         call_routes, call_routes.c.call_sid == calls.c.call_sid))
                     .where(calls.c.ended_at.is_(None), _holder() == instance))
        async with self._engine.connect() as connection:
            rows = list(await connection.execute(statement))
        return [OpenCall(sid, None if answered is None else _seconds(answered), float(spent))
                for sid, answered, spent in rows]

    async def register(self, instance: str, now: float) -> None:
        """This instance is alive while it holds its advisory lock (`liveness = 'lock'`)."""
        at = datetime.fromtimestamp(now, UTC)
        statement = insert(instances).values(id=instance, started_at=at, last_seen=at,
                                             liveness="lock")
        async with self._engine.begin() as connection:
            await connection.execute(statement.on_conflict_do_update(
                index_elements=["id"], set_={"started_at": at, "last_seen": at,
                                             "liveness": "lock"}))

    async def liveness(self, instance: str) -> tuple[str | None, float] | None:
        """How `instance` proves it is alive, and when it last heartbeated; None: no row."""
        async with self._engine.connect() as connection:
            row = (await connection.execute(select(instances.c.liveness, instances.c.last_seen)
                                            .where(instances.c.id == instance))).first()
        return None if row is None else (row[0], _seconds(row[1]))

    async def seen_since(self, since: float) -> list[str]:
        """Instances that heartbeated at or after `since` (epoch seconds)."""
        async with self._engine.connect() as connection:
            rows = await connection.execute(select(instances.c.id).where(
                instances.c.last_seen >= datetime.fromtimestamp(since, UTC)))
            return [row[0] for row in rows]

    async def forget(self, instance: str) -> None:
        """Drop a dead instance's heartbeat row once its calls are closed."""
        async with self._engine.begin() as connection:
            await connection.execute(delete(instances).where(instances.c.id == instance))


def _seconds(value: datetime) -> float:
    if value.tzinfo is None:  # SQLite keeps no zone; everything is stored in UTC
        value = value.replace(tzinfo=UTC)
    return value.timestamp()
