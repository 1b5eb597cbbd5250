"""Faults the fake GPT-Live server injects on command: drops, stalls, errors, and its close."""

from __future__ import annotations

import asyncio

from callbridge.testing.fake_live import FakeLiveServer, LiveReply
from callbridge.testing.speech import speechlike
from tests.testing.live_client import live_session

SPEED = 8.0
GREET = {"type": "session.commentary.append", "delegation_id": None, "content": "Say hello."}


async def test_drop_when_aborts_the_connection_before_the_chosen_event() -> None:
    """`drop_when("session.output_audio.delta", 3)`: two deltas arrive, then 1006."""
    async with FakeLiveServer([LiveReply("one two three four five")], speed=SPEED) as server:
        server.drop_when("session.output_audio.delta", 3)
        async with live_session(server) as client:
            client.microphone(SPEED)
            await client.send(GREET)
            assert await client.closed() == 1006
        assert len(client.of("session.output_audio.delta")) == 2
        assert server.sessions[0].close_code == 1006
        assert not client.of("session.closed")


async def test_drop_all_cuts_every_session_and_a_new_one_starts_fresh() -> None:
    """After `drop_all()` a new connection is a new session with a new id."""
    async with FakeLiveServer() as server:
        async with live_session(server) as first:
            await server.drop_all()
            assert await first.closed() == 1006
        async with live_session(server) as second:
            pass
        ids = [s.session_id for s in server.sessions]
        assert len(set(ids)) == 2
        assert second.of("session.started")


async def test_stall_sends_nothing_until_resume() -> None:
    """While stalled, acknowledgements and speech wait; `resume()` releases them."""
    async with FakeLiveServer(speed=SPEED) as server:
        async with live_session(server) as client:
            client.microphone(SPEED)
            server.stall()
            await client.send({"type": "session.input_audio.mute", "event_id": "m"})
            await asyncio.sleep(0.3)
            assert client.of("session.input_audio.muted") == []
            server.resume()
            await client.next("session.input_audio.muted")


async def test_injected_errors_are_non_fatal_unless_asked_to_be_fatal() -> None:
    """A non-fatal `error` leaves the session open; a fatal one is followed by a 1011 close."""
    async with FakeLiveServer() as server:
        async with live_session(server) as client:
            await server.send_error("rate_limit_exceeded", "Slow down.")
            await client.next("error")
            await client.send({"type": "session.input_audio.mute"})
            await client.next("session.input_audio.muted")
            await server.send_error("insufficient_quota", "No quota.", fatal=True)
            assert await client.closed() == 1011
        codes = [e["error"]["code"] for e in client.of("error")]
        assert codes == ["rate_limit_exceeded", "insufficient_quota"]
        assert server.violations == []


async def test_close_drains_the_speech_in_progress_before_session_closed() -> None:
    """`session.close` while the model talks: the utterance finishes (within `close_drain_ms`),
    then `session.closed`; input after the close is ignored."""
    async with FakeLiveServer(speed=SPEED) as server:
        async with live_session(server) as client:
            client.microphone(SPEED)
            await client.send(GREET)
            await client.next("session.output_audio.delta")
            await client.send({"type": "session.close"})
            await client.next("session.closed")
            closed_at = len(client.received)
        said = server.spoken[0]
        assert said.done
        assert not said.interrupted
        assert client.received[closed_at - 1]["type"] == "session.closed"
        assert client.received[closed_at - 2]["type"] == "session.output_audio.delta"


async def test_a_caller_turn_during_a_stall_is_answered_after_resume() -> None:
    """Stalls hold events, they do not lose them."""
    async with FakeLiveServer([LiveReply("Hi.")], speed=SPEED) as server:
        async with live_session(server) as client:
            client.microphone(SPEED)
            server.stall()
            client.say(speechlike(0.6, seed=2))
            await asyncio.sleep(0.3)
            assert client.of("session.input_transcript.delta") == []
            server.resume()
            await client.next("session.output_transcript.delta")
        assert server.spoken[0].transcript == "Hi."
