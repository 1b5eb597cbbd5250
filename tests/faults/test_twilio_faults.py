"""Faults on Twilio's side: the media socket lost without `stop` (a clean close or a TCP reset)
while the agent speaks, a socket that goes silent without closing (BUG: the call is never
ended), and a second `start` frame on a live stream."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from callbridge.audio.g711 import SAMPLE_RATE
from callbridge.testing.fake_caller import FakeTwilioCaller
from callbridge.testing.fake_realtime import Reply
from callbridge.testing.fault_proxy import FaultProxy
from callbridge.testing.speech import speechlike
from tests.e2e.harness import AUTH_TOKEN, PUBLIC_URL
from tests.faults.conftest import ReliabilityLog
from tests.faults.rig import (
    DIED,
    ENDED_GRACEFULLY,
    Injection,
    assert_survived,
    audible_gap,
    conclude,
    ended_in_record,
    healthy,
    into_a_reply,
    rig,
    turn,
    turns_lost,
    until,
)

pytestmark = pytest.mark.e2e

N = 3
REPLY = Reply(text="Let me read you our whole menu.", audio=speechlike(3.0, seed=4))


@pytest.mark.parametrize("abort", [False, True], ids=["clean-close", "tcp-reset"])
async def test_a_media_socket_lost_without_stop_closes_the_upstream_and_stores_the_call_ended(
    abort: bool, tmp_path: Path, reliability: ReliabilityLog,
) -> None:
    """No `stop`, lost mid-reply: upstream closed within 1 s, the call stored ended, turns kept."""

    async def scenario(tmp: Path, i: int) -> Injection:
        async with rig(tmp, [REPLY], speed=2.0) as r:
            caller = await r.call()
            await into_a_reply(caller, seed=600 + i)
            loop = asyncio.get_running_loop()
            lost_at = loop.time()
            await caller.drop(abort=abort)
            closed = await until(lambda: all(c.closed for c in r.fake.connections), within=3.0)
            upstream_closed_s = round(loop.time() - lost_at, 3)
            await caller.aclose()
            lost_turns = await turns_lost(r, caller)
            reason = await ended_in_record(r, caller)
            graceful = closed and upstream_closed_s < 1.0 and reason is not None
            return Injection(
                outcome=ENDED_GRACEFULLY if graceful else DIED,
                turns_finished=len(r.h.bridge_of(caller).transcript), turns_lost=lost_turns,
                frames_sent=None, frames_lost=None, gap_s=None, healthy=await healthy(r),
                notes={"upstream_closed_s": upstream_closed_s, "end_reason": reason})

    how = "TCP reset, no close frame" if abort else "close frame 1000, no `stop`"
    results = await reliability.measure(
        f"twilio-lost-{'reset' if abort else 'close'}",
        f"Twilio socket lost without `stop` ({how})",
        f"`FakeTwilioCaller.drop(abort={abort})` mid-reply", tmp_path, scenario, n=N)
    assert [r.outcome for r in results] == [ENDED_GRACEFULLY] * N, results
    assert all(r.turns_lost == 0 and r.healthy for r in results), results
    assert all(r.notes["end_reason"] == "media stream closed" for r in results), results


SILENT_S = 10.0


async def test_a_media_socket_that_goes_silent_without_closing_ends_the_call(
    tmp_path: Path, reliability: ReliabilityLog,
) -> None:
    """Twilio's side silent for 10 s with no FIN or RST: the call and its upstream are ended."""

    async def scenario(tmp: Path, i: int) -> Injection:
        async with rig(tmp, [REPLY], speed=2.0) as r:
            async with FaultProxy("127.0.0.1", r.h.server.port) as proxy:
                caller = FakeTwilioCaller(f"http://127.0.0.1:{proxy.port}", PUBLIC_URL,
                                          AUTH_TOKEN)
                await caller.dial()
                await caller.connect()
                await turn(caller, seed=1300 + i)
                proxy.stall()
                ended = await until(lambda: len(r.state.calls) == 0
                                    and all(c.closed for c in r.fake.connections),
                                    within=SILENT_S)
                proxy.resume()
                injection = await conclude(r, caller, went_on=False, gap=None,
                                           count_frames=False)
            injection.outcome = ENDED_GRACEFULLY if ended else DIED
            injection.notes["ended_within_s"] = SILENT_S if ended else None
            return injection

    results = await reliability.measure(
        "twilio-silent", "Twilio socket goes silent (half-open, no FIN/RST)",
        f"`FaultProxy.stall()` between caller and server for {SILENT_S:g} s", tmp_path, scenario,
        n=1)
    assert [r.outcome for r in results] == [ENDED_GRACEFULLY], results


def start_frame(caller: FakeTwilioCaller, **changes: str) -> str:
    """Twilio's `start` for this call again (its token included), with `changes` applied."""
    assert caller.twiml is not None
    start = {"accountSid": caller.account_sid, "streamSid": caller.stream_sid,
             "callSid": caller.call_sid, "tracks": ["inbound"],
             "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": SAMPLE_RATE,
                             "channels": 1},
             "customParameters": dict(caller.twiml.parameters)} | changes
    return json.dumps({"event": "start", "sequenceNumber": "2", "start": start,
                       "streamSid": start["streamSid"]})


DUPLICATES = [{}, {"streamSid": "MZ" + "f" * 32}, {"callSid": "CA" + "e" * 32}]


async def test_a_second_start_on_a_live_stream_is_ignored_and_the_call_goes_on(
    tmp_path: Path, reliability: ReliabilityLog,
) -> None:
    """A repeated `start` (same, other StreamSid, other CallSid) is ignored; the next turn works."""

    async def scenario(tmp: Path, i: int) -> Injection:
        async with rig(tmp, [Reply(text="Sure.", audio=speechlike(1.0, seed=3))]) as r:
            caller = await r.call()
            first = await turn(caller, seed=700 + i)
            fault_at = caller.now()
            await caller.send_raw(start_frame(caller, **DUPLICATES[i]))
            went_on = first and await turn(caller, seed=i)
            gap = audible_gap(caller.heard_segments, max(fault_at, caller.utterances[-1][1]),
                              caller.now())
            bridge = r.h.bridge_of(caller)
            assert bridge.notes["duplicate_start"] == 1
            assert bridge.session.stream_sid == caller.stream_sid
            return await conclude(r, caller, went_on=went_on, gap=gap,
                                  variant=sorted(DUPLICATES[i]) or ["identical"])

    results = await reliability.measure(
        "twilio-duplicate-start", "duplicate `start` on a live stream",
        "`send_raw(start)`: identical, other StreamSid, other CallSid", tmp_path, scenario,
        n=len(DUPLICATES))
    assert_survived(results)
