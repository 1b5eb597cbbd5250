"""The call record's database fails during live calls: PostgreSQL unreachable for 5 s (the
shorter sibling of tests/e2e/test_record_durability.py), and one record PostgreSQL would reject
(U+0000 in a transcript: the writer takes it out; records it cannot save are dropped alone,
tests/store/test_writer.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from callbridge.testing.fake_caller import FakeTwilioCaller
from callbridge.testing.fake_realtime import Reply
from callbridge.testing.speech import speechlike
from tests.faults.conftest import ReliabilityLog
from tests.faults.rig import (
    Injection,
    assert_survived,
    conclude,
    frames_lost,
    healthy,
    outcome,
    rig,
    turn,
    turns_lost,
)

pytestmark = pytest.mark.e2e

N = 3
OUTAGE_S = 5.0
REPLY = Reply(text="Okay.", audio=speechlike(0.8, seed=99))


async def talk_for(caller: FakeTwilioCaller, seconds: float, seed: int) -> bool:
    """Take turns for `seconds`; False as soon as one goes unanswered."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    turns = 0
    while loop.time() < deadline:
        if not await turn(caller, seed=seed * 100 + turns):
            return False
        turns += 1
    return True


async def test_a_5_second_database_outage_loses_no_turn_and_no_call_notices(
    tmp_path: Path, reliability: ReliabilityLog,
) -> None:
    """PostgreSQL down 5 s mid-call: calls keep their pace, and every turn is stored afterwards."""

    async def scenario(tmp: Path, i: int) -> Injection:
        async with rig(tmp, [REPLY], backend="postgresql", database_proxied=True) as r:
            assert r.database_proxy is not None
            assert r.state.writer is not None
            caller = await r.call()
            went_on = await talk_for(caller, 2.0, seed=800 + i)
            await r.database_proxy.outage(OUTAGE_S)
            went_on = went_on and await talk_for(caller, OUTAGE_S + 1.0, seed=900 + i)
            journaled = r.state.writer.stats.journaled
            gap = round(max(caller.turn_latencies), 3)
            return await conclude(r, caller, went_on=went_on, gap=gap, journaled=journaled,
                                  dropped=r.state.writer.stats.dropped)

    results = await reliability.measure(
        "database-outage-5s", "database down 5 s (PostgreSQL, during a call)",
        f"`FaultProxy.outage({OUTAGE_S:g})` on the database connection", tmp_path, scenario, n=N)
    assert_survived(results, max_gap=1.2)  # the gap: the usual wait for a reply
    assert all(r.notes["journaled"] > 0 for r in results), "the outage really hit the writer"
    assert all(r.notes["dropped"] == 0 for r in results), results


async def test_one_record_postgresql_rejects_does_not_stop_the_call_record(
    tmp_path: Path, reliability: ReliabilityLog,
) -> None:
    """U+0000 in a transcript costs at most that turn, not the call's other turns or later calls."""
    replies = [Reply(text="Okay.\u0000", audio=speechlike(0.8, seed=1)), REPLY]

    async def scenario(tmp: Path, i: int) -> Injection:
        async with rig(tmp, replies, backend="postgresql") as r:
            caller = await r.call()
            went_on = await turn(caller, seed=i) and await turn(caller, seed=10 + i)
            lost_frames = await frames_lost(r, caller)
            result = outcome(caller, went_on)
            await caller.hang_up()
            await caller.aclose()
            later = await r.call()  # a call after the poisoned record
            await turn(later, seed=20 + i)
            await later.hang_up()
            await later.aclose()
            lost = await turns_lost(r, caller, within=3.0)
            return Injection(result, len(r.h.bridge_of(caller).transcript), lost,
                             caller.frames_sent, lost_frames, None, await healthy(r),
                             {"later_call_turns_lost": await turns_lost(r, later, within=1.0)})

    results = await reliability.measure(
        "database-rejects-record", "a record PostgreSQL rejects (NUL in a turn)",
        "the model's transcript holds U+0000", tmp_path, scenario, n=1)
    assert all((r.turns_lost or 0) <= 1 for r in results), results
    assert all(r.notes["later_call_turns_lost"] == 0 for r in results), results
