"""Barge-in over real sockets: the caller talks over the agent; the model learns what was heard."""

from __future__ import annotations

import asyncio
import random

import pytest

from callbridge.testing.fake_caller import FakeTwilioCaller
from callbridge.testing.fake_realtime import FakeRealtimeServer, Reply
from callbridge.testing.speech import speechlike
from tests.e2e.harness import connected_call, harness

pytestmark = pytest.mark.e2e

CHUNK_MS = 40
# The confirmed position lags what was heard by at most one chunk, plus the time the clear and
# the last mark echo spend on loopback and in two event loops.
SLACK_MS = CHUNK_MS + 30


def truncates(fake: FakeRealtimeServer) -> list[dict[str, object]]:
    return [e for c in fake.connections for e in c.client_events
            if e["type"] == "conversation.item.truncate"]


def heard_ms_before_each_clear(caller: FakeTwilioCaller) -> list[float]:
    """Agent audio the caller heard between consecutive clears, in ms."""
    heard, previous = [], -1.0
    for clear in caller.clears:
        heard.append(1000 * sum(min(end, clear) - max(start, previous)
                                for start, end in caller.heard_segments
                                if end > previous and start < clear))
        previous = clear
    return heard


def replies(count: int, seed: int) -> list[Reply]:
    """Distinct, noisy replies, so any frame of one can be recognised on the wire."""
    return [Reply(text=f"Reply {i} " + "word " * 40, audio=speechlike(4.0, seed=seed * 100 + i))
            for i in range(count)]


async def test_barge_in_stops_the_agent_and_truncates_at_what_was_heard() -> None:
    """Caller speech over the agent: clear, no stale audio after it, truncate within one chunk."""
    async with harness(replies(3, seed=1), speed=1.5) as h:
        async with await connected_call(h) as caller:
            await caller.say(speechlike(0.6, seed=11))
            await caller.wait_for_agent_audio(timeout=5.0, after=caller.spoken_until)
            await asyncio.sleep(1.2)
            await caller.say(speechlike(0.6, seed=12))
            await caller.wait_for_agent_audio(timeout=5.0, after=caller.spoken_until)
            await caller.hang_up()
        [clear] = caller.clears
        [truncate] = truncates(h.fake)
        [heard] = heard_ms_before_each_clear(caller)
        assert 1000 < heard < 1500
        assert heard - SLACK_MS <= truncate["audio_end_ms"] <= heard + 1  # type: ignore[operator]
        assert h.fake.interrupted_audio, "the fake sent late deltas to drop"
        after_clear = caller.audio_received_after(clear)
        for late in h.fake.interrupted_audio:
            assert late[:160] not in after_clear
        assert h.fake.truncate_errors == 0
        assert h.fake.violations == []
        assert caller.violations == []
        bridge = h.bridge_of(caller)
        first_reply = next(t for t in bridge.transcript if t.role == "agent")
        assert first_reply.interrupted
        assert first_reply.text.startswith(first_reply.heard)
        assert 0 < len(first_reply.heard) < len(first_reply.text)


async def interrupt_repeatedly(times: int, seed: int) -> tuple[list[float], list[int], int]:
    """One call interrupted `times` times at random moments; returns heard and truncate ms."""
    rng = random.Random(seed)
    # Generation at 2× real time: some interruptions land while the model is still streaming
    # (late deltas to drop, server-side cancel), others after it finished (playback only).
    async with harness(replies(times + 2, seed), speed=2.0) as h:
        async with await connected_call(h) as caller:
            await caller.say(speechlike(0.6, seed=seed))
            for turn in range(times):
                await caller.wait_for_agent_audio(timeout=5.0, after=caller.spoken_until)
                await asyncio.sleep(rng.uniform(0.1, 1.5))
                await caller.say(speechlike(0.5, seed=seed * 1000 + turn))
            await caller.wait_for_agent_audio(timeout=5.0, after=caller.spoken_until)
            await caller.hang_up()
        after_first_clear = caller.audio_received_after(caller.clears[0])
        stale = sum(late[:160] in after_first_clear for late in h.fake.interrupted_audio)
        assert h.fake.violations == []
        assert caller.violations == []
        ends = [int(e["audio_end_ms"]) for e in truncates(h.fake)]  # type: ignore[call-overload]
        return heard_ms_before_each_clear(caller), ends, h.fake.truncate_errors + stale


async def test_fifty_random_interruptions_cause_no_truncate_error() -> None:
    """5 concurrent calls × 10 interruptions at random times: every truncate accepted and exact."""
    results = await asyncio.gather(*(interrupt_repeatedly(10, seed) for seed in range(5)))
    pairs = [pair for heard, ends, _ in results for pair in zip(heard, ends, strict=True)]
    assert len(pairs) == 50
    assert sum(problems for _, _, problems in results) == 0
    for heard, end in pairs:
        assert heard - SLACK_MS <= end <= heard + 1
