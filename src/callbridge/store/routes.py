"""The facts of live calls every instance sees, and the stream tokens already redeemed.

Owns the SQL of `call_routes` and `stream_tokens` (PostgreSQL: several instances share one
database; SQLite is one instance and keeps these facts in memory, see `server.cluster`). A call's
row is written by the voice webhook (direction, numbers, agent, whether to wait for the
answering-machine verdict), taken by the instance whose media socket redeems the token (`owner`),
given the AMD verdict by whichever instance that callback reaches, and marked ended by its owner.
Each step is one statement, so concurrent instances serialise on the row: a verdict stored just
before the stream is taken is seen by the taker, one stored just after finds the owner to route
to. A nonce goes into `stream_tokens` once; a second insert, from any instance, finds it there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from callbridge.store.schema import call_routes, stream_tokens

ENDED_ROUTES_KEPT = timedelta(hours=1)


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What the webhook learnt about a call, which the media socket's instance needs."""

    direction: str = "inbound"
    from_number: str = ""
    to_number: str = ""
    agent: str = ""
    awaiting_answer: bool = False


@dataclass(frozen=True, slots=True)
class Route:
    """A call's shared row."""

    call_sid: str
    facts: CallFacts
    answered_by: str | None
    webhook_instance: str
    owner: str | None
    ended: bool


def _route(row: Any) -> Route:
    m = row._mapping
    return Route(m["call_sid"], CallFacts(m["direction"], m["from_number"], m["to_number"],
                                          m["agent"], m["awaiting_answer"]),
                 m["answered_by"], m["webhook_instance"], m["owner"], m["ended"])


def _facts_row(facts: CallFacts) -> dict[str, Any]:
    return {"direction": facts.direction, "from_number": facts.from_number,
            "to_number": facts.to_number, "agent": facts.agent,
            "awaiting_answer": facts.awaiting_answer}


class RouteStore:
    """`call_routes` and `stream_tokens` on a PostgreSQL engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def remember(self, call_sid: str, facts: CallFacts, instance: str,
                       now: float) -> Route:
        """The webhook's facts; a repeated webhook refreshes them (the owner stays). The row
        says whether an instance already took the call's stream."""
        row = {"call_sid": call_sid, **_facts_row(facts), "webhook_instance": instance,
               "ended": False, "updated_at": _utc(now)}
        statement = insert(call_routes).values(row)
        async with self._engine.begin() as connection:
            return _route((await connection.execute(statement.on_conflict_do_update(
                index_elements=["call_sid"],
                set_={**{k: statement.excluded[k] for k in _facts_row(facts)},
                      "webhook_instance": statement.excluded.webhook_instance,
                      "updated_at": statement.excluded.updated_at},
            ).returning(*call_routes.c))).one())

    async def redeem(self, nonce: str, call_sid: str, instance: str, expires_at: float) -> bool:
        """True the first time any instance redeems `nonce`; False ever after."""
        statement = insert(stream_tokens).values(
            nonce=nonce, call_sid=call_sid, instance=instance, expires_at=_utc(expires_at),
        ).on_conflict_do_nothing().returning(stream_tokens.c.nonce)
        async with self._engine.begin() as connection:
            return (await connection.execute(statement)).first() is not None

    async def take(self, call_sid: str, fallback: CallFacts, instance: str,
                   now: float) -> Route:
        """`instance` now carries the call's media stream. A call no webhook described (its
        webhook reached an instance without this database) gets `fallback`'s facts."""
        row = {"call_sid": call_sid, **_facts_row(fallback), "webhook_instance": "",
               "owner": instance, "ended": False, "updated_at": _utc(now)}
        statement = insert(call_routes).values(row).on_conflict_do_update(
            index_elements=["call_sid"],
            set_={"owner": instance, "ended": False, "updated_at": _utc(now)},
        ).returning(*call_routes.c)
        async with self._engine.begin() as connection:
            return _route((await connection.execute(statement)).one())

    async def verdict(self, call_sid: str, answered_by: str, now: float) -> Route:
        """Store the answering-machine verdict; the row says who carries the call by now."""
        row = {"call_sid": call_sid, **_facts_row(CallFacts()), "answered_by": answered_by,
               "webhook_instance": "", "ended": False, "updated_at": _utc(now)}
        statement = insert(call_routes).values(row).on_conflict_do_update(
            index_elements=["call_sid"],
            set_={"answered_by": answered_by, "updated_at": _utc(now)},
        ).returning(*call_routes.c)
        async with self._engine.begin() as connection:
            return _route((await connection.execute(statement)).one())

    async def get(self, call_sid: str) -> Route | None:
        async with self._engine.connect() as connection:
            row = (await connection.execute(
                select(call_routes).where(call_routes.c.call_sid == call_sid))).first()
        return None if row is None else _route(row)

    async def finish(self, call_sid: str, instance: str, now: float) -> None:
        """The call ended on `instance`, which carried it (or held it without a stream)."""
        routes = call_routes
        async with self._engine.begin() as connection:
            await connection.execute(update(routes).where(
                routes.c.call_sid == call_sid,
                (routes.c.owner == instance)
                | (routes.c.owner.is_(None) & (routes.c.webhook_instance == instance)),
            ).values(ended=True, updated_at=_utc(now)))

    async def end_all(self, call_sids: list[str], now: float) -> None:
        """Mark calls ended whatever instance carried them (a dead instance's, after a sweep)."""
        if not call_sids:
            return
        async with self._engine.begin() as connection:
            await connection.execute(update(call_routes).where(
                call_routes.c.call_sid.in_(call_sids)).values(ended=True, updated_at=_utc(now)))

    async def live(self) -> list[Route]:
        """Calls with a media stream on some instance that have not ended."""
        async with self._engine.connect() as connection:
            rows = await connection.execute(
                select(call_routes).where(call_routes.c.owner.is_not(None),
                                          call_routes.c.ended.is_(False))
                .order_by(call_routes.c.updated_at))
            return [_route(row) for row in rows]

    async def prune(self, now: float) -> None:
        """Forget expired nonces (an expired token is refused anyway) and old ended calls."""
        async with self._engine.begin() as connection:
            await connection.execute(delete(stream_tokens).where(
                stream_tokens.c.expires_at < _utc(now)))
            await connection.execute(delete(call_routes).where(
                call_routes.c.ended.is_(True),
                call_routes.c.updated_at < _utc(now) - ENDED_ROUTES_KEPT))
