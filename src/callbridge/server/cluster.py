"""This instance's link to the other instances: shared call facts, routing, liveness.

Owns how instances that share one PostgreSQL database find each other's calls:

- **Facts and tokens** (`store.routes`): the voice webhook writes what it learnt about the call;
  the media socket's instance redeems the token's nonce once for all instances, takes the call
  and reads those facts (agent, AMD expectations, a verdict that already arrived).
- **Messages** over PostgreSQL `LISTEN/NOTIFY`: each instance listens on its own channel
  (`channel_of(instance)`) on one dedicated connection; `send` is a `pg_notify` through the
  pool, `ask` sends and waits for the reply the other instance notifies back. No new
  infrastructure, transactional with the rows just written, and under a millisecond on one LAN.
  Payloads are JSON, at most 8000 bytes (PostgreSQL's limit).
- **Liveness**: the listening connection holds a session advisory lock keyed by
  `CALLBRIDGE_INSTANCE_ID` for the process's whole life. A second process with the same ID cannot
  take it and refuses to start; a process that dies (even `kill -9`) loses its connection, so
  the lock frees at once, and the next sweep (every `CALLBRIDGE_SWEEP_S`) by any other instance
  closes its calls as `interrupted`. Instances of older versions (no lock) count as dead only
  when their heartbeat is stale.

`Cluster` itself is one instance alone (no database, or SQLite): every call is local, tokens are
single-use through `StreamTokens`' own memory, and nothing is routed. At start it warns when
another instance heartbeats into the same SQLite file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import text
from sqlalchemy.engine import make_url

from callbridge.errors import ConfigError
from callbridge.logs import get_logger
from callbridge.store.failures import UNAVAILABLE_ERRORS
from callbridge.store.instances import InstanceStore
from callbridge.store.records import CallEnded
from callbridge.store.repository import CallStore
from callbridge.store.routes import CallFacts, Route, RouteStore

log = get_logger("callbridge.cluster")

Message = dict[str, Any]
Handler = Callable[[Message], Awaitable[Message | None]]

MAX_PAYLOAD = 7900  # PostgreSQL refuses NOTIFY payloads of 8000 bytes or more
DB_TIMEOUT_S = 2.0
STALE_AFTER_S = 60.0  # a heartbeat older than this is a dead instance (those without a lock)
LOCK_ATTEMPTS = 10  # a sweeper may hold a dead instance's lock for a moment while it checks
_DB_ERRORS = (*UNAVAILABLE_ERRORS, asyncpg.PostgresError, asyncpg.InterfaceError)


def channel_of(instance: str) -> str:
    """The NOTIFY channel an instance listens on (an identifier whatever the ID holds)."""
    return "callbridge_" + hashlib.sha256(instance.encode()).hexdigest()[:24]


def _lock_key(instance: str) -> int:
    """The advisory lock key of an instance: 63 bits of a hash of its ID."""
    digest = hashlib.sha256(b"callbridge instance\n" + instance.encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class Cluster:
    """One instance alone: every call it knows is its own."""

    shared = False

    def __init__(self, instance: str, store: CallStore | None = None) -> None:
        self.instance = instance
        self.handler: Handler | None = None
        self._store = store

    async def start(self) -> None:
        if self._store is None:
            return
        with contextlib.suppress(*UNAVAILABLE_ERRORS):
            others = await InstanceStore(self._store.engine).seen_since(time.time() - 45.0)
            others = [other for other in others if other != self.instance]
            if others:
                log.warning("another instance is using this SQLite database: SQLite supports one "
                            "instance only; use PostgreSQL to run several",
                            others=sorted(others))

    async def stop(self) -> None:
        return None

    async def remember(self, call_sid: str, facts: CallFacts) -> Route | None:
        """Share the webhook's facts; the call's row, which says whether an instance already
        took its stream (None alone or when the database did not answer)."""
        return None

    async def redeem(self, nonce: str, call_sid: str, expires_at: float) -> bool:
        return True

    async def take(self, call_sid: str, fallback: CallFacts) -> Route | None:
        return None

    async def verdict(self, call_sid: str, kind: str) -> Route | None:
        return None

    async def route(self, call_sid: str) -> Route | None:
        return None

    async def finished(self, call_sid: str) -> None:
        return None

    async def live(self) -> list[Route] | None:
        """Live calls across instances; None when only this instance's own are known."""
        return None

    async def send(self, instance: str, message: Message) -> bool:
        return False

    async def ask(self, instance: str, message: Message, within: float = 2.0) -> Message | None:
        return None


class PostgresCluster(Cluster):
    """Instances sharing one PostgreSQL database (see the module docstring)."""

    shared = True

    def __init__(self, instance: str, store: CallStore, database_url: str, *,
                 sweep_every: float = 5.0) -> None:
        super().__init__(instance, store)
        self._call_store = store
        self._routes = RouteStore(store.engine)
        self._instances = InstanceStore(store.engine)
        self._dsn = make_url(database_url).set(drivername="postgresql").render_as_string(
            hide_password=False)
        self._channel = channel_of(instance)
        self._sweep_every = sweep_every
        self._connection: Any = None  # asyncpg.Connection: listens and holds the lock
        self._connection_lock = asyncio.Lock()
        self._waiting: dict[str, asyncio.Future[Message]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._stopping = False

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Take this instance's lock (refusing a duplicate ID), listen, register, sweep."""
        for attempt in range(LOCK_ATTEMPTS):
            if await self._connect():
                break
            if attempt == LOCK_ATTEMPTS - 1:
                raise ConfigError(
                    f"another live instance already uses CALLBRIDGE_INSTANCE_ID={self.instance}: "
                    "give each instance its own ID (the pod or host name, plus the worker number)")
            await asyncio.sleep(0.1)
        await self._instances.register(self.instance, time.time())
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="cluster-sweep")

    async def _connect(self) -> bool:
        """Open the listening connection; False when another process holds our lock."""
        connection = await asyncpg.connect(self._dsn, timeout=5)
        locked = await connection.fetchval("SELECT pg_try_advisory_lock($1)",
                                           _lock_key(self.instance))
        if not locked:
            await connection.close()
            return False
        await connection.add_listener(self._channel, self._on_notify)
        connection.add_termination_listener(self._on_lost)
        self._connection = connection
        return True

    def _on_lost(self, connection: Any) -> None:
        if self._stopping or connection is not self._connection:
            return
        log.error("lost the cluster connection to PostgreSQL; reconnecting")
        self._connection = None
        self._spawn(self._reconnect())

    async def _reconnect(self) -> None:
        delay = 0.2
        while not self._stopping and self._connection is None:
            try:
                if await self._connect():
                    log.warning("cluster connection back")
                    return
                log.error("another process took this instance's ID while the connection was "
                          "down; its calls and ours can no longer be told apart")
            except _DB_ERRORS as exc:
                log.warning("cluster reconnect failed", error=str(exc)[:200])
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def stop(self) -> None:
        self._stopping = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, *([self._sweeper] if self._sweeper else []),
                             return_exceptions=True)
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(*_DB_ERRORS):
                await connection.close(timeout=2)

    # ---------------------------------------------------------------- call facts

    async def remember(self, call_sid: str, facts: CallFacts) -> Route | None:
        result: Route | None = await self._quietly("remember", self._routes.remember(
            call_sid, facts, self.instance, time.time()))
        return result

    async def redeem(self, nonce: str, call_sid: str, expires_at: float) -> bool:
        redeemed = await self._quietly("redeem", self._routes.redeem(
            nonce, call_sid, self.instance, expires_at))
        # Unavailable database: the token is genuine and unused here; admit the call.
        return True if redeemed is None else bool(redeemed)

    async def take(self, call_sid: str, fallback: CallFacts) -> Route | None:
        route: Route | None = await self._quietly("take", self._routes.take(
            call_sid, fallback, self.instance, time.time()))
        if route is not None and route.webhook_instance not in ("", self.instance):
            await self.send(route.webhook_instance, {"op": "release", "call_sid": call_sid})
        return route

    async def verdict(self, call_sid: str, kind: str) -> Route | None:
        result: Route | None = await self._quietly("verdict", self._routes.verdict(
            call_sid, kind, time.time()))
        return result

    async def route(self, call_sid: str) -> Route | None:
        result: Route | None = await self._quietly("route", self._routes.get(call_sid))
        return result

    async def finished(self, call_sid: str) -> None:
        await self._quietly("finish", self._routes.finish(call_sid, self.instance, time.time()))

    async def live(self) -> list[Route] | None:
        result: list[Route] | None = await self._quietly("live", self._routes.live())
        return result

    async def _quietly(self, what: str, operation: Awaitable[Any]) -> Any:
        """`operation`'s result, or None (logged) when the database does not answer in time:
        a call goes on as on a single instance rather than fail."""
        try:
            async with asyncio.timeout(DB_TIMEOUT_S):
                return await operation
        except UNAVAILABLE_ERRORS as exc:
            log.warning("shared call facts unavailable", operation=what,
                        error=str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
            return None

    # ---------------------------------------------------------------- messages

    async def send(self, instance: str, message: Message) -> bool:
        """Notify `instance`; False when the message could not be sent."""
        payload = json.dumps({**message, "from": self.instance}, separators=(",", ":"))
        if len(payload.encode()) > MAX_PAYLOAD:
            log.error("cluster message too large; not sent", op=message.get("op"),
                      size=len(payload))
            return False
        try:
            async with asyncio.timeout(DB_TIMEOUT_S), self._call_store.engine.connect() as conn:
                await conn.execute(text("SELECT pg_notify(:channel, :payload)"),
                                   {"channel": channel_of(instance), "payload": payload})
                await conn.commit()
        except UNAVAILABLE_ERRORS as exc:
            log.warning("could not notify an instance", to=instance, op=message.get("op"),
                        error=str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
            return False
        return True

    async def ask(self, instance: str, message: Message, within: float = 2.0) -> Message | None:
        """Send and wait for the reply; None when none came within `within` seconds."""
        ask_id = uuid.uuid4().hex
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiting[ask_id] = future
        try:
            if not await self.send(instance, {**message, "id": ask_id}):
                return None
            async with asyncio.timeout(within):
                return await future
        except TimeoutError:
            return None
        finally:
            self._waiting.pop(ask_id, None)

    def _on_notify(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            log.error("unreadable cluster message dropped", size=len(payload))
            return
        if not isinstance(message, dict):
            return
        if message.get("op") == "reply":
            future = self._waiting.get(str(message.get("id")))
            if future is not None and not future.done():
                future.set_result(message)
            return
        self._spawn(self._handle(message))

    async def _handle(self, message: Message) -> None:
        if self.handler is None:
            return
        reply = await self.handler(message)
        sender, ask_id = message.get("from"), message.get("id")
        if reply is not None and isinstance(sender, str) and ask_id is not None:
            await self.send(sender, {**reply, "op": "reply", "id": ask_id})

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("cluster task failed", exc_info=task.exception())

    # ---------------------------------------------------------------- liveness

    async def _sweep_forever(self) -> None:
        pruned_at = 0.0
        while True:
            try:
                await self.sweep()
                if time.time() - pruned_at > 60.0:
                    await self._routes.prune(time.time())
                    pruned_at = time.time()
            except _DB_ERRORS as exc:
                log.warning("liveness sweep failed", error=str(exc).splitlines()[0][:200]
                            if str(exc) else type(exc).__name__)
            await asyncio.sleep(self._sweep_every)

    async def sweep(self) -> list[str]:
        """Close the calls of every dead instance as `interrupted`; returns their CallSids."""
        closed: list[str] = []
        for other in sorted(await self._instances.holders(self.instance)):
            if await self._is_dead(other):
                closed += await self._close_calls_of(other)
        return closed

    async def _is_dead(self, instance: str) -> bool:
        seen = await self._instances.liveness(instance)
        if seen is not None and seen[0] != "lock":
            return seen[1] < time.time() - STALE_AFTER_S
        connection = self._connection
        if connection is None:
            return False  # we cannot tell now
        async with self._connection_lock:
            key = _lock_key(instance)
            free = await connection.fetchval("SELECT pg_try_advisory_lock($1)", key)
            if free:
                await connection.execute("SELECT pg_advisory_unlock($1)", key)
        return bool(free)

    async def _close_calls_of(self, instance: str) -> list[str]:
        now = time.time()
        calls = await self._instances.open_calls(instance)
        if calls:
            await self._call_store.apply([
                CallEnded(call.call_sid, now, "interrupted",
                          round(now - call.answered_at, 3) if call.answered_at else 0.0,
                          round(call.cost_usd, 6))
                for call in calls])
            await self._routes.end_all([call.call_sid for call in calls], now)
            log.warning("closed the calls of a dead instance as interrupted", instance=instance,
                        calls=len(calls))
        await self._instances.forget(instance)
        return [call.call_sid for call in calls]
