"""The network to OpenAI stalls for 5 s mid-reply (a fault proxy stops forwarding both ways, no
FIN, no RST): what the caller hears, and whether anything notices.

Observed: nothing does. The upstream client pings every 20 s (the websockets default) and the
bridge has no deadline of its own on upstream events, so a 5 s stall is never detected: no
reconnect, no comfort tone — the caller hears the audio already sent to Twilio (≤ 300 ms), then
silence until the network resumes and the held events arrive at once. Nothing is lost: TCP holds
every byte both ways.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from callbridge.testing.fake_realtime import Reply
from callbridge.testing.speech import speechlike
from tests.faults.conftest import ReliabilityLog
from tests.faults.rig import (
    Injection,
    assert_survived,
    conclude,
    inject,
    no_violations,
    rig,
    settle_and_turn,
)

pytestmark = pytest.mark.e2e

N = 3
STALL_S = 5.0


async def test_a_5_second_upstream_stall_is_heard_as_silence_and_the_call_goes_on(
    tmp_path: Path, reliability: ReliabilityLog,
) -> None:
    """Stalled 5 s as the reply starts: silence (no reconnect), then the reply, nothing lost."""
    replies = [Reply(text="Our opening hours are nine to five.", audio=speechlike(2.5, seed=5))]

    async def scenario(tmp: Path, i: int) -> Injection:
        async with rig(tmp, replies, proxied=True, speed=1.0) as r:
            assert r.proxy is not None
            caller = await r.call()
            await caller.say(speechlike(0.6, seed=400 + i))
            await caller.wait_for_agent_audio(timeout=8.0, after=caller.spoken_until)
            stalled_at = caller.now()
            r.proxy.stall()
            await asyncio.sleep(STALL_S)
            r.proxy.resume()
            await caller.wait_for_agent_audio(timeout=8.0, after=caller.now())
            gap, went_on = await settle_and_turn(caller, since=stalled_at, seed=i,
                                                 quiet_for=0.6, within=15.0)
            bridge = r.h.bridge_of(caller)
            no_violations(r, caller)
            return await conclude(r, caller, went_on=went_on, gap=gap,
                                  upstream_lost=bridge.notes["upstream_lost"])

    results = await inject(N, tmp_path, scenario)
    reliability.record("upstream-stall-5s", "upstream stalls 5 s mid-reply",
                       "`FaultProxy.stall()`, `resume()` after 5 s", results)
    assert_survived(results)
    # What the caller hears: the stall, less the audio Twilio already held. Not detected.
    assert all(r.notes["upstream_lost"] == 0 for r in results), results
    assert all(STALL_S - 1.0 < (r.gap_s or 0.0) < STALL_S + 1.0 for r in results), results
