"""The writer: batching off the audio path, spilling to the journal, replaying it, and dropping
only the records the database refuses."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from callbridge.store.journal import Journal
from callbridge.store.migrate import upgrade_async
from callbridge.store.records import CallOpened, Record, TurnRecorded
from callbridge.store.repository import CallStore
from callbridge.store.writer import StoreWriter
from tests.databases import fresh_database


def turns(sid: str, count: int) -> list[TurnRecorded]:
    return [TurnRecorded(sid, f"i{n}", "caller", f"turn {n}", f"turn {n}", False, n, n + 1)
            for n in range(count)]


def opened(sid: str) -> CallOpened:
    return CallOpened(sid, "inbound", "+1", "+2", "a", "m", "v", "me", 1.0)


@contextlib.asynccontextmanager
async def writing(store: CallStore, journal: Journal,
                  **options: Any) -> AsyncIterator[StoreWriter]:
    """A started writer on `store`; the writer and the store are closed at the end, whatever
    the test found."""
    writer = StoreWriter(store, journal, **options)
    try:
        await writer.start()
        yield writer
    finally:
        await writer.close()
        await store.close()


@dataclass
class LockedSqlite:
    """A writer on a SQLite database another connection holds locked (the database is down)."""

    store: CallStore
    journal: Journal
    writer: StoreWriter
    blocker: sqlite3.Connection

    async def release(self) -> None:
        """Let go of the lock and wait until the writer finds the database back."""
        self.blocker.rollback()
        self.blocker.close()
        await until(lambda: self.writer.database_up)


@contextlib.asynccontextmanager
async def locked_sqlite(tmp_path: Path) -> AsyncIterator[LockedSqlite]:
    path = tmp_path / "calls.db"
    url = f"sqlite:///{path}?timeout=0.2"
    await upgrade_async(url)
    store = CallStore(url)
    async with writing(store, Journal(tmp_path / "j.jsonl"), retry_delays=[0.2]) as writer:
        blocker = sqlite3.connect(path, timeout=0)
        blocker.execute("BEGIN EXCLUSIVE")
        yield LockedSqlite(store, writer.journal, writer, blocker)


async def test_submitted_records_are_written_in_batches(database_url: str,
                                                        tmp_path: Path) -> None:
    """500 turns land with a handful of transactions, and submit never awaits."""
    store = CallStore(database_url)
    async with writing(store, Journal(tmp_path / "j.jsonl"), batch_size=256) as writer:
        writer.submit(opened("CA1"))
        for record in turns("CA1", 500):
            writer.submit(record)
        await writer.flush()
        call = await store.get_call("CA1")
        assert call is not None
        assert len(call["transcript"]) == 500
        assert writer.stats.written == 501


async def test_a_locked_sqlite_database_spills_to_the_journal_and_replays(
    tmp_path: Path,
) -> None:
    """While another process holds the write lock, records go to the journal; then they land."""
    async with locked_sqlite(tmp_path) as locked:
        writer, journal = locked.writer, locked.journal
        writer.submit(opened("CA1"))
        for record in turns("CA1", 20):
            writer.submit(record)
        await writer.flush(within=5.0)
        assert not writer.database_up
        assert len(journal) == 21
        await locked.release()
        assert len(journal) == 0
        assert await item_ids(locked.store, "CA1") == [f"i{n}" for n in range(20)]
        assert writer.stats.replayed == 21


async def test_a_journal_left_by_a_previous_run_is_replayed_at_start(database_url: str,
                                                                     tmp_path: Path) -> None:
    """Records journaled before a crash reach the database when the next run starts."""
    journal = Journal(tmp_path / "j.jsonl")
    journal.append([opened("CA9"), *turns("CA9", 3)])
    store = CallStore(database_url)
    writer = StoreWriter(store, journal, instance="me")
    recovered = await writer.start()
    call = await store.get_call("CA9")
    assert call is not None
    assert len(call["transcript"]) == 3
    assert recovered == ["CA9"], "its call was left open by 'me': now interrupted"
    assert call["end_reason"] == "interrupted"
    assert len(journal) == 0
    await writer.close()
    await store.close()


async def test_a_full_queue_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    """Overflow never stalls the caller of submit(); it is counted."""
    url = f"sqlite:///{tmp_path / 'calls.db'}"
    await upgrade_async(url)
    store = CallStore(url)
    writer = StoreWriter(store, Journal(tmp_path / "j.jsonl"), capacity=10)
    for record in turns("CA1", 25):  # the writer task is not running: nothing drains
        writer.submit(record)
    assert writer.stats.dropped == 15
    assert writer.queue_depth == 10
    await store.close()



# ---------------------------------------------------------------- records the database refuses

POISON_MS = 2**70  # beyond 64 bits: aiosqlite raises OverflowError, asyncpg a DataError


def poison(sid: str, item_id: str = "poison") -> TurnRecorded:
    return TurnRecorded(sid, item_id, "agent", "secret words", "", False, POISON_MS, 0)


async def item_ids(store: CallStore, sid: str) -> list[str]:
    call = await store.get_call(sid)
    assert call is not None
    return [turn["item_id"] for turn in call["transcript"]]


async def test_a_nul_in_a_transcript_is_stored_without_it(database_url: str,
                                                          tmp_path: Path) -> None:
    """U+0000 (PostgreSQL refuses it in text) is taken out; the turn lands, nothing is refused."""
    store = CallStore(database_url)
    async with writing(store, Journal(tmp_path / "j.jsonl")) as writer:
        writer.submit(opened("CA1"))
        writer.submit(TurnRecorded("CA1", "i0", "agent", "Okay.\x00", "Ok\x00ay", False, 0, 1))
        await writer.flush()
        call = await store.get_call("CA1")
        assert call is not None
        assert [(t["text"], t["heard"]) for t in call["transcript"]] == [("Okay.", "Okay")]
        assert (writer.stats.written, writer.stats.rejected, writer.database_up) == (2, 0, True)


async def test_a_refused_record_is_dropped_and_counted_and_the_rest_of_its_batch_lands(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """One refused record costs that record only: logged with kind and CallSid, never its text."""
    store = CallStore(database_url)
    journal = Journal(tmp_path / "j.jsonl")
    async with writing(store, journal) as writer:
        for record in [opened("CA1"), *turns("CA1", 2), poison("CA1")]:
            writer.submit(record)
        writer.submit(TurnRecorded("CA1", "i9", "caller", "after", "after", False, 9, 10))
        await writer.flush()
        assert await item_ids(store, "CA1") == ["i0", "i1", "i9"]
        assert (writer.stats.written, writer.stats.rejected) == (4, 1)
        assert writer.database_up, "a refused record is no outage"
        assert len(journal) == 0
        refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        assert len(refused) == 1
        assert refused[0].startswith("the database refused a TurnRecorded record of call CA1 (")
        assert "secret" not in caplog.text


async def test_records_after_a_refused_one_are_written_in_later_batches(
    database_url: str, tmp_path: Path,
) -> None:
    """The writer goes on writing directly after a refusal: nothing queues behind it."""
    store = CallStore(database_url)
    async with writing(store, Journal(tmp_path / "j.jsonl")) as writer:
        writer.submit(opened("CA1"))
        writer.submit(poison("CA1"))
        await writer.flush()
        for record in turns("CA1", 3):
            writer.submit(record)
        await writer.flush()
        assert await item_ids(store, "CA1") == ["i0", "i1", "i2"]
        assert (writer.stats.written, writer.stats.rejected, writer.stats.journaled) == (4, 1, 0)


@pytest.fixture
async def postgresql_url(tmp_path: Path) -> AsyncIterator[str]:
    async for url in fresh_database("postgresql", tmp_path):
        yield url


async def test_a_string_postgresql_finds_too_long_is_refused_alone(postgresql_url: str,
                                                                   tmp_path: Path) -> None:
    """A server-side data error (22001, a role beyond VARCHAR(16)) takes only its record."""
    store = CallStore(postgresql_url)
    async with writing(store, Journal(tmp_path / "j.jsonl")) as writer:
        writer.submit(opened("CA1"))
        writer.submit(TurnRecorded("CA1", "long", "r" * 17, "x", "x", False, 0, 1))
        for record in turns("CA1", 2):
            writer.submit(record)
        await writer.flush()
        assert await item_ids(store, "CA1") == ["i0", "i1"]
        assert (writer.stats.rejected, writer.database_up) == (1, True)


async def test_a_journal_holding_a_refused_record_is_replayed_past_it(
    database_url: str, tmp_path: Path,
) -> None:
    """At start-up a refused record in the journal is dropped; the rest lands, it is cleared."""
    journal = Journal(tmp_path / "j.jsonl")
    journal.append([opened("CA9"), *turns("CA9", 2), poison("CA9"),
                    TurnRecorded("CA9", "i9", "caller", "after", "after", False, 9, 10)])
    store = CallStore(database_url)
    async with writing(store, journal, instance="other") as writer:
        assert await item_ids(store, "CA9") == ["i0", "i1", "i9"]
        assert (writer.stats.replayed, writer.stats.rejected) == (4, 1)
        assert writer.database_up
        assert len(journal) == 0


async def test_a_refused_record_journaled_during_an_outage_does_not_block_the_replay(
    tmp_path: Path,
) -> None:
    """Down (SQLite locked), a refused record is journaled with the rest; back up, the replay
    drops it, stores the others, and direct writes resume."""
    async with locked_sqlite(tmp_path) as locked:
        writer, journal = locked.writer, locked.journal
        for record in [opened("CA1"), *turns("CA1", 2), poison("CA1")]:
            writer.submit(record)
        await writer.flush(within=5.0)
        assert not writer.database_up
        assert len(journal) == 4
        await locked.release()
        writer.submit(TurnRecorded("CA1", "i9", "caller", "after", "after", False, 9, 10))
        await writer.flush()
        assert await item_ids(locked.store, "CA1") == ["i0", "i1", "i9"]
        assert (writer.stats.replayed, writer.stats.rejected, len(journal)) == (3, 1, 0)


class GoesDown(CallStore):
    """A real store whose database becomes unreachable after `transactions` more writes."""

    def __init__(self, database_url: str, transactions: int) -> None:
        super().__init__(database_url)
        self.transactions = transactions

    async def apply(self, records: Sequence[Record]) -> None:
        if self.transactions <= 0:
            raise OperationalError("INSERT", {}, ConnectionRefusedError("connection refused"))
        self.transactions -= 1
        await super().apply(records)


async def test_an_outage_while_retrying_record_by_record_journals_the_records_not_written(
    database_url: str, tmp_path: Path,
) -> None:
    """Refused batch, then the database goes away mid-retry: what was not written yet is
    journaled in order (the refused record is not), and replayed once the database is back."""
    store = GoesDown(database_url, transactions=3)  # the batch, CallOpened, the poison
    journal = Journal(tmp_path / "j.jsonl")
    async with writing(store, journal, retry_delays=[0.1]) as writer:
        for record in [opened("CA1"), poison("CA1"), *turns("CA1", 2)]:
            writer.submit(record)
        await writer.flush()
        assert not writer.database_up
        assert [r.item_id for r in journal.read() if isinstance(r, TurnRecorded)] == ["i0", "i1"]
        assert (writer.stats.written, writer.stats.rejected, writer.stats.journaled) == (1, 1, 2)
        store.transactions = 100
        await until(lambda: writer.database_up)
        assert await item_ids(store, "CA1") == ["i0", "i1"]


async def until(condition: Callable[[], bool], within: float = 5.0) -> None:
    for _ in range(int(within / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")
