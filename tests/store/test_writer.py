"""The writer: batching off the audio path, spilling to the journal, replaying it."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from callbridge.store.journal import Journal
from callbridge.store.migrate import upgrade_async
from callbridge.store.records import CallOpened, TurnRecorded
from callbridge.store.repository import CallStore
from callbridge.store.writer import StoreWriter


def turns(sid: str, count: int) -> list[TurnRecorded]:
    return [TurnRecorded(sid, f"i{n}", "caller", f"turn {n}", f"turn {n}", False, n, n + 1)
            for n in range(count)]


def opened(sid: str) -> CallOpened:
    return CallOpened(sid, "inbound", "+1", "+2", "a", "m", "v", "me", 1.0)


async def test_submitted_records_are_written_in_batches(database_url: str,
                                                        tmp_path: Path) -> None:
    """500 turns land with a handful of transactions, and submit never awaits."""
    store = CallStore(database_url)
    writer = StoreWriter(store, Journal(tmp_path / "j.jsonl"), batch_size=256)
    await writer.start()
    writer.submit(opened("CA1"))
    for record in turns("CA1", 500):
        writer.submit(record)
    await writer.flush()
    call = await store.get_call("CA1")
    assert call is not None
    assert len(call["transcript"]) == 500
    assert writer.stats.written == 501
    await writer.close()
    await store.close()


async def test_a_locked_sqlite_database_spills_to_the_journal_and_replays(
    tmp_path: Path,
) -> None:
    """While another process holds the write lock, records go to the journal; then they land."""
    path = tmp_path / "calls.db"
    url = f"sqlite:///{path}?timeout=0.2"
    await upgrade_async(url)
    store = CallStore(url)
    journal = Journal(tmp_path / "j.jsonl")
    writer = StoreWriter(store, journal, retry_delays=[0.2])
    await writer.start()
    blocker = sqlite3.connect(path, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")
    writer.submit(opened("CA1"))
    for record in turns("CA1", 20):
        writer.submit(record)
    await writer.flush(within=5.0)
    assert not writer.database_up
    assert len(journal) == 21
    blocker.rollback()
    blocker.close()
    for _ in range(50):
        if writer.database_up:
            break
        await asyncio.sleep(0.1)
    assert writer.database_up
    assert len(journal) == 0
    call = await store.get_call("CA1")
    assert call is not None
    assert [t["item_id"] for t in call["transcript"]] == [f"i{n}" for n in range(20)]
    assert writer.stats.replayed == 21
    await writer.close()
    await store.close()


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

