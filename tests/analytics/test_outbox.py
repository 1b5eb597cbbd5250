"""The outbox: a call's post-call jobs are committed with its end, and only with it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from callbridge.store.jobs import JobQueue
from callbridge.store.journal import Journal
from callbridge.store.records import CallEnded, TurnRecorded
from callbridge.store.repository import CallStore
from callbridge.store.writer import StoreWriter
from tests.analytics.conftest import T0, a_call, kinds

SID = "CA" + "1" * 32


async def test_a_call_ended_through_the_writer_has_its_jobs(store: CallStore,
                                                            tmp_path: Path) -> None:
    """The writer's batch that ends a call also writes its analyze and call.ended jobs."""
    writer = StoreWriter(store, Journal(tmp_path / "journal.jsonl"))
    await writer.start()
    for record in a_call(SID):
        writer.submit(record)
    await writer.flush()
    await writer.close()
    jobs = await JobQueue(store.engine).list()
    assert kinds(jobs) == ["analyze", "webhook:call.ended"]
    assert {(j["call_sid"], j["state"], j["attempts"]) for j in jobs} == {(SID, "pending", 0)}


async def test_an_open_call_has_no_jobs(store: CallStore) -> None:
    """Nothing is queued before the call ends."""
    await store.apply(a_call(SID)[:-1])
    assert await JobQueue(store.engine).list() == []


async def test_a_failed_batch_leaves_neither_the_end_nor_the_jobs(store: CallStore) -> None:
    """The end and its jobs share one transaction: when the batch fails, neither is written."""
    await store.apply(a_call(SID)[:-1])
    broken = TurnRecorded(SID, "item_9", "caller", None, "", False, 0, 0)  # type: ignore[arg-type]
    with pytest.raises(IntegrityError):
        await store.apply([CallEnded(SID, T0 + 30, "caller hung up", 30.0, 0.0), broken])
    call = await store.get_call(SID)
    assert call is not None
    assert call["ended_at"] is None
    assert await JobQueue(store.engine).list() == []


async def test_ending_a_call_twice_queues_its_jobs_once(store: CallStore) -> None:
    """A replayed journal or a retried batch does not duplicate jobs."""
    await store.apply(a_call(SID))
    await store.apply(a_call(SID))
    await store.apply([CallEnded(SID, T0 + 40, "completed", 40.0, 0.0)])
    assert kinds(await JobQueue(store.engine).list()) == ["analyze", "webhook:call.ended"]


async def test_calls_closed_by_recovery_get_their_jobs_too(store: CallStore) -> None:
    """A call a crashed instance left open is analysed too, once recovery ends it."""
    await store.apply(a_call(SID)[:-1])
    assert await store.recover("pod-a", T0 + 120) == [SID]
    jobs = await JobQueue(store.engine).list()
    assert kinds(jobs) == ["analyze", "webhook:call.ended"]
