"""Garbage on the wire: junk frames on Twilio's socket, bytes corrupted in transit from OpenAI,
and a media payload that is not base64 on a PCM16 call (it ended the call until fac2905)."""

from __future__ import annotations

from pathlib import Path

import pytest

from callbridge.testing.fake_realtime import Reply
from callbridge.testing.speech import speechlike
from tests.faults.conftest import ReliabilityLog
from tests.faults.rig import (
    Injection,
    assert_survived,
    audible_gap,
    conclude,
    into_a_reply,
    rig,
    settle_and_turn,
    turn,
    until,
)

pytestmark = pytest.mark.e2e

N = 3
REPLY = Reply(text="We open at nine tomorrow.", audio=speechlike(2.0, seed=12))
JUNK = ["not json", "", "[1, 2]", '{"event": "media"}', '{"event": "bogus"}',
        '{"event": "media", "media": {"timestamp": "x", "payload": "//8="}}',
        '{"event": "mark", "mark": {"name": 5}}', b"\x00\xff binary"]


async def test_junk_frames_on_the_media_socket_are_dropped_and_the_call_goes_on(
    tmp_path: Path, reliability: ReliabilityLog,
) -> None:
    """Eight malformed frames mid-call (not JSON, wrong shapes, binary): counted, dropped."""

    async def scenario(tmp: Path, i: int) -> Injection:
        async with rig(tmp, [REPLY], speed=2.0) as r:
            caller = await r.call()
            fault_at = await into_a_reply(caller, seed=1000 + i)
            for frame in JUNK:
                await caller.send_raw(frame)
            gap, went_on = await settle_and_turn(caller, since=fault_at, seed=i)
            assert r.h.bridge_of(caller).session.stats.malformed_twilio == len(JUNK)
            return await conclude(r, caller, went_on=went_on, gap=gap)

    results = await reliability.measure(
        "twilio-junk-frames", "junk frames on the Twilio socket (×8 per call)",
        "`send_raw()`: not JSON, wrong shapes, binary", tmp_path, scenario, n=N)
    assert_survived(results, max_gap=0.5)


async def test_bytes_corrupted_in_transit_from_openai_are_survived_by_reconnecting(
    tmp_path: Path, reliability: ReliabilityLog,
) -> None:
    """32 bytes inverted mid-reply: the socket is refused and replaced, and the call goes on."""

    async def scenario(tmp: Path, i: int) -> Injection:
        async with rig(tmp, [REPLY], proxied=True, speed=2.0) as r:
            assert r.proxy is not None
            caller = await r.call()
            fault_at = await into_a_reply(caller, seed=1100 + i)
            r.proxy.corrupt_next(32, "down")
            await until(lambda: len(r.fake.connections) >= 2, within=5.0)
            gap, went_on = await settle_and_turn(caller, since=fault_at, seed=i,
                                                 quiet_for=0.6, within=12.0)
            bridge = r.h.bridge_of(caller)
            return await conclude(r, caller, went_on=went_on, gap=gap,
                                  upstream_lost=bridge.notes["upstream_lost"],
                                  malformed=bridge.session.stats.malformed_realtime)

    results = await reliability.measure(
        "upstream-corrupt-bytes", "bytes corrupted in transit from OpenAI",
        "`FaultProxy.corrupt_next(32, 'down')` mid-reply", tmp_path, scenario, n=N)
    assert_survived(results, max_gap=1.0)


async def test_a_media_payload_that_is_not_base64_on_a_pcm16_call_is_dropped(
    tmp_path: Path, reliability: ReliabilityLog,
) -> None:
    """One media frame with payload "0" on a PCM16 call: dropped, the call goes on."""

    async def scenario(tmp: Path, i: int) -> Injection:
        async with rig(tmp, [REPLY], env={"CALLBRIDGE_AUDIO_FORMAT": "pcm16"}) as r:
            caller = await r.call()
            first = await turn(caller, seed=1200 + i)
            await caller.send_raw('{"event": "media", "media": {"track": "inbound", '
                                  '"timestamp": "20", "payload": "0"}}')
            went_on = first and await turn(caller, seed=i, within=4.0)
            gap = audible_gap(caller.heard_segments, caller.utterances[-1][1], caller.now())
            assert r.h.bridge_of(caller).session.stats.malformed_twilio == 1
            return await conclude(r, caller, went_on=went_on, gap=gap)

    results = await reliability.measure(
        "twilio-bad-payload-pcm16", "a media payload that is not base64 "
        "(PCM16 agent)", "`send_raw(media, payload=\"0\")`", tmp_path, scenario, n=N)
    assert_survived(results)
