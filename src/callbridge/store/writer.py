"""The one task that writes the call record, so no call ever waits on the database.

Bridges `submit()` records without awaiting: they go into a bounded queue. The writer drains it
in batches, one transaction each. When the database is unavailable, the batch and everything
after it go to the local journal, and a probe retries with backoff; once the database answers, the
journal is replayed (in order, idempotently) before new records are written again. When the
database refuses a batch's data (`failures.classify`), the batch is written again one record per
transaction and only the records refused are dropped — counted and logged with their kind and
CallSid, never their text — so one bad record never holds up the others, live or replayed. A full
queue drops the record, counts it and logs — it never blocks a call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from callbridge.store.failures import UNAVAILABLE_ERRORS, Failure, classify, describe
from callbridge.store.journal import Journal
from callbridge.store.records import Record
from callbridge.store.repository import CallStore

log = logging.getLogger("callbridge.store")

DB_ERRORS = UNAVAILABLE_ERRORS  # what a database call raises while the database is down


@dataclass
class WriterStats:
    submitted: int = 0
    written: int = 0
    journaled: int = 0
    replayed: int = 0
    dropped: int = 0  # the queue was full
    rejected: int = 0  # the database refused the record's data
    failures: int = 0


@dataclass(frozen=True)
class _Stored:
    """What writing some records came to: how many landed, and — when the database became
    unavailable on the way — the error and the records not written yet, in order."""

    written: int
    rest: list[Record]
    error: BaseException | None = None


class StoreWriter:
    """Queue, batch, write; spill to the journal and replay it when the database is down."""

    def __init__(
        self,
        store: CallStore,
        journal: Journal,
        *,
        instance: str = "callbridge",
        capacity: int = 10_000,
        batch_size: int = 256,
        write_timeout: float = 10.0,
        retry_delays: Sequence[float] = (0.5, 1.0, 2.0, 4.0, 8.0),
        heartbeat_every: float = 15.0,
    ) -> None:
        self.store = store
        self.journal = journal
        self.instance = instance
        self.stats = WriterStats()
        self.database_up = True
        self._queue: asyncio.Queue[Record] = asyncio.Queue(maxsize=capacity)
        self._batch_size = batch_size
        self._write_timeout = write_timeout
        self._retry_delays = tuple(retry_delays)
        self._heartbeat_every = heartbeat_every
        self._journal_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._probe: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    # ---------------------------------------------------------------- for bridges

    def submit(self, record: Record) -> None:
        """Queue a record; never blocks. A full queue drops it (counted and logged)."""
        self.stats.submitted += 1
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self.stats.dropped += 1
            if self.stats.dropped == 1 or self.stats.dropped % 1000 == 0:
                log.error("call record queue is full: %d record(s) dropped so far",
                          self.stats.dropped)
            return
        self._idle.clear()

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> list[str]:
        """Replay what a previous life journaled, close the calls it left open, start writing.
        Returns the CallSids recovered as interrupted."""
        recovered: list[str] = []
        try:
            await self._replay()
            recovered = await self.store.recover(self.instance, time.time())
            await self.store.heartbeat(self.instance, time.time())
        except DB_ERRORS as exc:
            self._mark_down(exc)
        if recovered:
            log.warning("closed %d call(s) left open by a previous run as interrupted",
                        len(recovered))
        self._tasks = [asyncio.create_task(self._run(), name="store-writer"),
                       asyncio.create_task(self._beat(), name="store-heartbeat")]
        return recovered

    async def flush(self, within: float = 10.0) -> None:
        """Wait until everything submitted so far is written or journaled."""
        await asyncio.wait_for(self._idle.wait(), within)

    async def close(self, within: float = 10.0) -> None:
        """Write or journal what is queued, then stop."""
        with contextlib.suppress(TimeoutError):
            await self.flush(within)
        if not self._queue.empty():  # the database is hanging: keep the rest on disk
            await self._spill(self._drain())
        tasks = [*self._tasks, *([self._probe] if self._probe else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ---------------------------------------------------------------- the writer task

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            batch += self._drain(self._batch_size - 1)
            await self._write(batch)
            if self._queue.empty():
                self._idle.set()

    def _drain(self, limit: int | None = None) -> list[Record]:
        records: list[Record] = []
        while not self._queue.empty() and (limit is None or len(records) < limit):
            records.append(self._queue.get_nowait())
        return records

    async def _write(self, batch: list[Record]) -> None:
        while True:
            if self.database_up:
                stored = await self._store(batch)
                self.stats.written += stored.written
                if stored.error is None:
                    return
                batch = stored.rest
                self._mark_down(stored.error)
            async with self._journal_lock:
                if not self.database_up:
                    await asyncio.to_thread(self.journal.append, batch)
                    self.stats.journaled += len(batch)
                    return
            # The journal was replayed while we waited for it: write this batch directly.

    async def _store(self, records: list[Record]) -> _Stored:
        """Write `records` in one transaction; if the database refuses their data, in one
        transaction per record, dropping only the records it refuses."""
        error = await self._apply(records)
        if error is None:
            return _Stored(len(records), [])
        if classify(error) is Failure.UNAVAILABLE:
            return _Stored(0, records, error)
        if len(records) > 1:
            return await self._store_each(records)
        self._reject(records[0], error)
        return _Stored(0, [])

    async def _store_each(self, records: list[Record]) -> _Stored:
        written = 0
        for index, record in enumerate(records):
            stored = await self._store([record])
            written += stored.written
            if stored.error is not None:
                return _Stored(written, records[index:], stored.error)
        return _Stored(written, [])

    async def _apply(self, records: list[Record]) -> Exception | None:
        """None once `records` are applied, in one transaction; else the database failure.
        Errors that are no database failure (`classify`) propagate."""
        try:
            await asyncio.wait_for(self.store.apply(records), self._write_timeout)
        except Exception as exc:
            if classify(exc) is None:
                raise
            return exc
        return None

    def _reject(self, record: Record, exc: BaseException) -> None:
        self.stats.rejected += 1
        log.error("the database refused a %s record of call %s (%s): dropped it",
                  type(record).__name__, record.call_sid, describe(exc))

    async def _spill(self, batch: list[Record]) -> None:
        async with self._journal_lock:
            await asyncio.to_thread(self.journal.append, batch)
        self.stats.journaled += len(batch)

    def _mark_down(self, exc: BaseException) -> None:
        self.stats.failures += 1
        if self.database_up:
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            log.warning("database unavailable (%s): writing the call record to %s until it is "
                        "back", reason, self.journal.path)
        self.database_up = False
        if self._probe is None or self._probe.done():
            self._probe = asyncio.create_task(self._recover(), name="store-probe")

    async def _recover(self) -> None:
        attempt = 0
        while not self.database_up:
            delay = self._retry_delays[min(attempt, len(self._retry_delays) - 1)]
            attempt += 1
            await asyncio.sleep(delay)
            try:
                await asyncio.wait_for(self.store.ping(), self._write_timeout)
                replayed = await self._replay()
            except DB_ERRORS:
                continue
            log.warning("database is back: replayed %d journaled record(s)", replayed)

    async def _replay(self) -> int:
        """Apply the journal, dropping records the database refuses, then clear it; marks the
        database up. Returns how many records landed; raises one of DB_ERRORS while the database
        is unavailable (the journal is kept: replaying it again changes nothing)."""
        async with self._journal_lock:
            records = await asyncio.to_thread(self.journal.read)
            landed = 0
            for start in range(0, len(records), self._batch_size):
                stored = await self._store(records[start:start + self._batch_size])
                landed += stored.written
                if stored.error is not None:
                    raise stored.error  # one of DB_ERRORS (`classify`)
            await asyncio.to_thread(self.journal.clear)
            self.database_up = True
        self.stats.replayed += landed
        return landed

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_every)
            if self.database_up:
                with contextlib.suppress(*DB_ERRORS):
                    await self.store.heartbeat(self.instance, time.time())
