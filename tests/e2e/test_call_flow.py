"""A call end to end over real sockets: greeting, a turn, hang-up, refusals."""

from __future__ import annotations

import asyncio

import pytest

from callbridge.server.app import create_app
from callbridge.server.runner import running
from callbridge.testing.fake_caller import CallRefused, UpgradeRefused
from callbridge.testing.fake_realtime import Reply
from callbridge.testing.speech import speechlike
from tests.e2e.harness import connected_call, harness, stream_elsewhere

pytestmark = pytest.mark.e2e

GREETING = "Thanks for calling Ada's bakery. How can I help?"


async def test_the_caller_hears_the_greeting_within_a_second() -> None:
    """With a greeting configured, agent audio starts playing well under a second after start."""
    async with harness(env={"CALLBRIDGE_GREETING": GREETING}) as h:
        async with await connected_call(h) as caller:
            started = await caller.wait_for_agent_audio(timeout=3.0)
            assert started < 1.0
            await caller.wait_until_agent_quiet(quiet_for=0.5, timeout=10.0)
            await caller.hang_up()
        bridge = h.bridge_of(caller)
        await asyncio.wait_for(bridge.finished.wait(), 2.0)
        [turn] = [t for t in bridge.transcript if t.role == "agent"]
        assert turn.heard == GREETING
        assert not turn.interrupted
        assert caller.violations == []
        assert h.fake.violations == []


async def test_a_full_turn_caller_speaks_and_hears_the_reply() -> None:
    """Caller speech reaches the model; the reply is played back and both sides are transcribed."""
    replies = [Reply(text="We open at eight tomorrow.")]
    async with harness(replies, user_transcripts=["When do you open?"]) as h:
        async with await connected_call(h) as caller:
            await caller.say(speechlike(1.2, seed=3))
            await caller.wait_for_agent_audio(timeout=5.0, after=caller.spoken_until)
            await caller.wait_until_agent_quiet(quiet_for=0.5, timeout=10.0)
            await caller.hang_up()
        bridge = h.bridge_of(caller)
        await asyncio.wait_for(bridge.finished.wait(), 2.0)
        roles = [(t.role, t.heard) for t in bridge.transcript]
        assert ("caller", "When do you open?") in roles
        assert ("agent", "We open at eight tomorrow.") in roles
        [latency] = caller.turn_latencies
        assert 0.4 < latency < 1.5  # 500 ms of VAD silence plus the bridge
        assert caller.violations == []
        assert h.fake.violations == []


async def test_hanging_up_closes_the_upstream_within_a_second() -> None:
    """Twilio `stop` closes the Realtime session promptly (an open one is billed)."""
    async with harness(env={"CALLBRIDGE_GREETING": GREETING}) as h:
        async with await connected_call(h) as caller:
            await caller.wait_for_agent_audio(timeout=3.0)
            await caller.hang_up()
            loop = asyncio.get_running_loop()
            hung_up = loop.time()
            await h.fake.wait_for(lambda: all(c.closed for c in h.fake.connections), timeout=2.0)
            assert loop.time() - hung_up < 1.0


async def test_an_unsigned_webhook_is_refused() -> None:
    """POST /voice without a valid signature gets 403 and opens nothing upstream."""
    async with harness() as h:
        caller = h.caller(sign_webhook=False)
        with pytest.raises(CallRefused) as refused:
            await caller.dial()
        assert refused.value.status == 403
        await asyncio.sleep(0.1)
        assert h.fake.connections == []
        await caller.aclose()


async def test_an_unsigned_upgrade_is_refused_before_accept() -> None:
    """The media socket upgrade without a signature is answered 403, not 101."""
    async with harness() as h:
        caller = h.caller(sign_upgrade=False)
        await caller.dial()
        with pytest.raises(UpgradeRefused) as refused:
            await caller.connect()
        assert refused.value.status == 403
        await caller.aclose()


async def test_a_replayed_stream_token_is_refused() -> None:
    """A second media socket presenting a used token is closed without reaching the call."""
    async with harness(env={"CALLBRIDGE_GREETING": GREETING}) as h:
        first = await connected_call(h)
        await first.wait_for_agent_audio(timeout=3.0)
        replay = h.caller(call_sid=first.call_sid)
        replay_twiml = first.twiml
        assert replay_twiml is not None
        await replay.connect(replay_twiml.stream_url, parameters=replay_twiml.parameters)
        await replay.wait_closed(timeout=3.0)
        assert replay.closed_by_server_at is not None
        assert replay.played_bytes == 0
        assert h.state.calls.get(first.call_sid) is not None
        await first.hang_up()
        await first.aclose()
        await replay.aclose()


async def test_malformed_twilio_frames_are_dropped_and_the_call_goes_on() -> None:
    """Garbage frames are counted; the next turn still works."""
    replies = [Reply(text="Still here.")]
    async with harness(replies) as h:
        async with await connected_call(h) as caller:
            for junk in ["not json", '{"event": "media"}', "[1,2]", '{"event":"bogus"}']:
                await caller.send_raw(junk)
            await caller.say(speechlike(1.0, seed=5))
            await caller.wait_for_agent_audio(timeout=5.0, after=caller.spoken_until)
            bridge = h.bridge_of(caller)
            assert bridge.session.stats.malformed_twilio == 4
            await caller.hang_up()


@pytest.mark.parametrize("abort", [False, True], ids=["clean-close", "tcp-abort"])
async def test_a_media_socket_lost_without_stop_ends_the_call_and_the_upstream(
    abort: bool,
) -> None:
    """No `stop`, just a closed or cut socket: the upstream is still closed within a second."""
    async with harness(env={"CALLBRIDGE_GREETING": GREETING}) as h:
        caller = await connected_call(h)
        await caller.wait_for_agent_audio(timeout=3.0)
        loop = asyncio.get_running_loop()
        lost = loop.time()
        await caller.drop(abort=abort)
        await h.fake.wait_for(lambda: all(c.closed for c in h.fake.connections), timeout=2.0)
        assert loop.time() - lost < 1.0
        bridge = h.bridge_of(caller)
        await asyncio.wait_for(bridge.finished.wait(), 2.0)
        await caller.aclose()


async def test_a_call_whose_media_socket_never_connects_releases_its_upstream() -> None:
    """The webhook pre-opens the upstream; without a media socket it is closed after the TTL."""
    async with harness(env={"CALLBRIDGE_STREAM_TOKEN_TTL": "1"}) as h:
        caller = h.caller()
        await caller.dial()
        await h.fake.wait_for(lambda: len(h.fake.connections) == 1, timeout=2.0)
        await h.fake.wait_for(lambda: h.fake.connections[0].closed, timeout=3.0)
        # The registry forgets the call once its shutdown (which closed the socket) finishes.
        await h.fake.wait_for(lambda: len(h.state.calls) == 0, timeout=2.0)
        assert len(h.state.calls) == 0
        await caller.aclose()


async def test_the_media_socket_may_land_on_another_instance() -> None:
    """Behind a load balancer: webhook on instance A, media socket on instance B — admitted."""
    async with harness(env={"CALLBRIDGE_GREETING": GREETING}) as a:
        second = create_app(a.state.settings)
        async with running(second) as b:
            dialer = a.caller()
            caller = await stream_elsewhere(b.url, dialer, await dialer.dial())
            assert caller.closed_by_server_at is None
            assert second.state.callbridge.calls.get(dialer.call_sid) is not None
            await caller.hang_up()
            await caller.aclose()
            await dialer.aclose()
