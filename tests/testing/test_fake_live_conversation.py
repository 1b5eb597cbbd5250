"""The fake GPT-Live model in conversation: greeting, replies, echo, pacing, barge-in, input."""

from __future__ import annotations

import asyncio
import base64
import itertools
import time

import numpy as np
import pytest

from callbridge.testing.fake_live import FakeLiveServer, LiveReply, LiveToolCall
from callbridge.testing.fake_live_session import speakable
from callbridge.testing.speech import silence, speechlike
from tests.testing.live_client import audio_of, live_session

SPEED = 8.0
CALLER = speechlike(1.0, seed=3)
GREETING = {"type": "session.commentary.append", "event_id": "greet", "delegation_id": None,
            "content": 'Greet the caller now: "Hello, this is Ava."'}


async def spoken_after(server: FakeLiveServer, count: int = 1) -> None:
    """Wait until the model finished its nth utterance."""
    await server.wait_for(lambda: len(server.spoken) >= count and server.spoken[count - 1].done)


async def test_the_model_does_not_speak_first_until_commentary_tells_it_to() -> None:
    """Silence gets no speech; commentary is acknowledged and spoken (its quoted text)."""
    async with FakeLiveServer(speed=SPEED) as server:
        async with live_session(server) as client:
            client.microphone(SPEED)
            await asyncio.sleep(0.2)
            assert client.of("session.output_audio.delta") == []
            await client.send(GREETING)
            ack = await client.next("session.commentary.appended")
            await spoken_after(server)
        said = server.spoken[0]
        assert ack["client_event_id"] == "greet"
        assert ack["start_ms"] <= ack["end_ms"]
        assert (said.why, said.transcript) == ("greeting", "Hello, this is Ava.")
        assert audio_of(client.received) == bytes(said.audio)
        assert server.violations == []
        assert client.problems == []


async def test_a_configured_greeting_replaces_the_commentary_text() -> None:
    """`greeting=` is what the model says for its first commentary."""
    async with FakeLiveServer(speed=SPEED, greeting="Welcome to Acme.") as server:
        async with live_session(server) as client:
            client.microphone(SPEED)
            await client.send(GREETING)
            await spoken_after(server)
        assert server.spoken[0].transcript == "Welcome to Acme."


async def test_output_transcripts_carry_session_clock_times_and_audio_has_none() -> None:
    """Transcript deltas have increasing start_ms/end_ms on the input clock; audio deltas have no
    timestamps (primary WebSocket) and are μ-law of 100 ms."""
    async with FakeLiveServer(speed=SPEED) as server:
        async with live_session(server) as client:
            client.microphone(SPEED)
            await asyncio.sleep(0.1)
            await client.send(GREETING)
            await spoken_after(server)
            clock = server.sessions[0].clock_ms
        deltas = client.of("session.output_transcript.delta")
        spans = [(d["start_ms"], d["end_ms"]) for d in deltas]
        assert all(start < end for start, end in spans)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
        assert 0 < spans[0][0] <= clock
        audio = client.of("session.output_audio.delta")
        assert all(set(d) == {"type", "delta"} for d in audio)
        assert len(audio_of(audio[:1])) == 800


async def test_speech_streams_at_real_time_pace_by_default() -> None:
    """At speed 1, one second of speech takes about a second to arrive."""
    async with FakeLiveServer(reaction_ms=0) as server:
        async with live_session(server) as client:
            client.microphone(1.0)
            await client.send(GREETING)
            await client.next("session.output_audio.delta")
            began = time.monotonic()
            await server.wait_for(lambda: server.spoken[0].done, timeout=10)
            took = time.monotonic() - began
        duration = server.spoken[0].sent_ms / 1000
        assert duration > 0.5
        assert took >= 0.8 * duration - 0.1


async def test_a_caller_turn_gets_an_input_transcript_and_the_scripted_reply() -> None:
    """The caller's speech becomes `session.input_transcript.delta` with its span; the model
    answers with the next scripted reply."""
    replies = [LiveReply("First answer."), LiveReply("Second answer.")]
    async with FakeLiveServer(replies, speed=SPEED, user_transcripts=["Hi there"]) as server:
        async with live_session(server) as client:
            client.microphone(SPEED)
            client.say(silence(0.2) + CALLER)
            heard = await client.next("session.input_transcript.delta")
            await spoken_after(server)
            client.say(CALLER)
            await spoken_after(server, 2)
        assert heard["delta"] == " Hi there"
        assert 150 <= heard["start_ms"] <= 260
        assert 1100 <= heard["end_ms"] <= 1300
        assert [u.transcript for u in server.spoken] == ["First answer.", "Second answer."]
        assert server.spoken[0].start_ms >= heard["end_ms"]


async def test_echo_mode_says_the_callers_own_audio_back() -> None:
    """With `echo`, the model's audio is the caller's turn, byte for byte."""
    async with FakeLiveServer(echo=True, speed=SPEED) as server:
        async with live_session(server) as client:
            client.microphone(SPEED)
            client.say(CALLER)
            await spoken_after(server)
        echoed = server.spoken[0]
        assert echoed.why == "echo"
        assert bytes(echoed.audio) in CALLER + silence(0.1)
        assert len(echoed.audio) >= 0.9 * len(CALLER)


async def test_the_model_stops_when_the_caller_talks_over_it() -> None:
    """Caller speech longer than `barge_in_ms` during a reply ends it at once: the utterance is
    marked interrupted, holds only what was sent, and the next audio is the next reply."""
    replies = [LiveReply("word " * 40), LiveReply("Okay.")]
    async with FakeLiveServer(replies, speed=2.0, barge_in_ms=200) as server:
        async with live_session(server) as client:
            client.microphone(2.0)
            client.say(CALLER)
            await client.next("session.output_audio.delta", count=3)
            client.say(speechlike(1.0, seed=9))
            await spoken_after(server, 2)
        said, answer = server.spoken
        talked_over = client.of("session.input_transcript.delta")[1]
        assert said.interrupted
        assert not answer.interrupted
        assert said.audio_planned is not None
        assert 0 < len(said.audio) < len(said.audio_planned) / 2
        assert said.end_ms is not None
        assert said.end_ms <= talked_over["start_ms"] + 200 + 500 + 100
        assert audio_of(client.received) == bytes(said.audio) + bytes(answer.audio)
        assert said.transcript.split() == said.text.split()[: len(said.transcript.split())]


async def test_a_short_backchannel_does_not_stop_the_model() -> None:
    """A 120 ms "mhm" under `barge_in_ms` leaves the reply running and gets no reply of its own."""
    async with FakeLiveServer([LiveReply("one two three four five six seven eight")],
                              speed=4.0, barge_in_ms=300) as server:
        async with live_session(server) as client:
            client.microphone(4.0)
            client.say(CALLER)
            await client.next("session.output_audio.delta", count=2)
            client.say(speechlike(0.12, seed=5))
            await server.wait_for(lambda: server.spoken[0].done, timeout=5)
            await asyncio.sleep(0.3)
        assert not server.spoken[0].interrupted
        assert len(server.spoken) == 1


async def test_input_gaps_stall_the_clock_and_are_recorded() -> None:
    """A pause in the caller's frames is recorded with its length and clock position, and the
    model's speech waits for input rather than running ahead."""
    async with FakeLiveServer(speed=1.0, reaction_ms=0, input_lead_ms=200) as server:
        async with live_session(server) as client:
            client.microphone(1.0)
            await asyncio.sleep(0.3)
            await client.send(GREETING)
            await client.next("session.output_audio.delta")
            await client.mute_microphone()
            await asyncio.sleep(0.6)
            stalled = len(client.of("session.output_audio.delta"))
            clock = server.sessions[0].clock_ms
            await asyncio.sleep(0.4)
            assert len(client.of("session.output_audio.delta")) == stalled
            client.microphone(1.0)
            await client.next("session.output_audio.delta", count=stalled + 1)
        session = server.sessions[0]
        assert stalled <= 6
        assert len(session.input_gaps) == 1
        gap = session.input_gaps[0]
        assert gap.at_ms == clock
        assert 800 <= gap.missing_ms <= 1400
        assert session.input_missing_ms == gap.missing_ms


async def test_mute_and_unmute_are_acknowledged_and_muted_speech_is_not_heard() -> None:
    """While muted the clock runs but the model hears silence: no turn, no reply."""
    async with FakeLiveServer(speed=SPEED) as server:
        async with live_session(server) as client:
            client.microphone(SPEED)
            await client.send({"type": "session.input_audio.mute", "event_id": "m"})
            await client.next("session.input_audio.muted")
            client.say(CALLER)
            await asyncio.sleep(0.4)
            await client.send({"type": "session.input_audio.unmute", "event_id": "u"})
            unmuted = await client.next("session.input_audio.unmuted")
        session = server.sessions[0]
        assert unmuted["client_event_id"] == "u"
        assert client.of("session.input_transcript.delta") == []
        assert server.spoken == []
        (start, end), = session.muted_ranges
        assert end is not None
        assert end - start > 1000
        assert CALLER in session.input_audio


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ('Greet the caller now: "Hi, I\'m Ava."', "Hi, I'm Ava."),
        ("Say 'welcome back' to the caller.", "welcome back"),
        ("Tell the caller we're open until five.", "Tell the caller we're open until five."),
        ("Greet the caller: “Good morning.”", "Good morning."),
    ],
)
def test_commentary_is_spoken_as_its_quoted_text_or_whole(content: str, said: str) -> None:
    """Quoted text is what the model says; apostrophes are not quotes."""
    assert speakable(content) == said


async def test_instructions_asking_to_greet_make_the_model_speak_but_facts_do_not() -> None:
    """`instructions.append` "Greet …" is spoken; "The caller pressed 2" is not."""
    async with FakeLiveServer(speed=SPEED) as server:
        async with live_session(server) as client:
            client.microphone(SPEED)
            for content in ("The caller pressed 2.", 'Greet the caller: "Hello."'):
                await client.send({"type": "session.instructions.append",
                                   "delegation_id": None, "content": content})
            await client.next("session.instructions.appended", count=2)
            await spoken_after(server)
            await asyncio.sleep(0.1)
        assert [u.transcript for u in server.spoken] == ["Hello."]


async def test_a_whole_conversation_in_strict_mode_emits_only_valid_events() -> None:
    """With `strict`, the fake checks its own events against the SDK; none is invalid."""
    replies = [LiveReply("Sure.", tool_calls=(LiveToolCall("f", {"a": 1}),), filler="Hm."),
               LiveReply("Bye.")]
    async with FakeLiveServer(replies, speed=SPEED, strict=True, usage_interval_s=0.1) as server:
        delegation = {"type": "responses", "responses": {"model": "gpt-5.6-terra"}}
        async with live_session(server, delegation=delegation) as client:
            client.microphone(SPEED)
            await client.send(GREETING)
            client.say(CALLER)
            call = await client.next("response.event", count=3)
            call_id = call["event"]["item"]["call_id"]
            await client.next("response.event", count=4)
            await client.send({"type": "response.item.create", "item": {
                "type": "function_call_output", "call_id": call_id, "output": "ok"}})
            await client.send({"type": "response.create"})
            await server.wait_for(lambda: any(u.why == "backend" and u.done
                                              for u in server.spoken))
            await client.send({"type": "session.close"})
            await client.next("session.closed")
        assert server.violations == []
        assert client.problems == []


async def test_an_audio_fixture_cuts_the_model_plays_as_mulaw_and_is_acknowledged() -> None:
    """`fixture.play` (PCM16 24 kHz): `playing`, the model's speech cut, the clip sent as μ-law
    at 8 kHz, `played`; commentary meanwhile is refused."""
    clip = np.tile(np.array([0, 8000, 0, -8000], dtype="<i2"), 24_000 // 4 // 2)  # 0.5 s
    async with FakeLiveServer([LiveReply("word " * 30)], speed=SPEED) as server:
        async with live_session(server) as client:
            client.microphone(SPEED)
            client.say(CALLER)
            await client.next("session.output_audio.delta", count=2)
            await client.send({"type": "session.output_audio.fixture.play", "event_id": "fx",
                               "audio": base64.b64encode(clip.tobytes()).decode()})
            playing = await client.next("session.output_audio.fixture.playing")
            await client.send(GREETING)
            refused = await client.next("error")
            played = await client.next("session.output_audio.fixture.played")
        reply, fixture = server.spoken
        assert (playing["client_event_id"], played["client_event_id"]) == ("fx", "fx")
        assert refused["error"]["code"] == "fixture_active"
        assert reply.interrupted
        assert fixture.why == "fixture"
        assert len(fixture.audio) == 4000
        assert audio_of(client.received).endswith(bytes(fixture.audio))
        assert server.violations == []


async def test_the_reaction_time_delays_speech_without_holding_up_the_input() -> None:
    """The model answers `reaction_ms` after commentary, reading input all the while (no gap)."""
    async with FakeLiveServer(reaction_ms=600) as server:
        async with live_session(server) as client:
            client.microphone(1.0)
            await asyncio.sleep(0.1)
            await client.send(GREETING)
            asked = server.sessions[0].clock_ms
            await client.next("session.output_audio.delta")
        said = server.spoken[0]
        assert said.start_ms is not None
        assert said.start_ms >= asked + 500
        assert server.sessions[0].input_gaps == []


async def test_the_model_backchannels_once_in_a_long_caller_turn_when_asked_to() -> None:
    """With `backchannel_after_ms`, "Mhm." comes while the caller still talks, is not cut by
    the caller's speech, and the reply follows the turn."""
    async with FakeLiveServer([LiveReply("Got it.")], speed=SPEED,
                              backchannel_after_ms=800) as server:
        async with live_session(server) as client:
            client.microphone(SPEED)
            client.say(speechlike(2.5, seed=11))
            await spoken_after(server, 2)
        turn = client.of("session.input_transcript.delta")[0]
        mhm, reply = server.spoken
        assert (mhm.why, mhm.transcript, mhm.interrupted) == ("backchannel", "Mhm.", False)
        assert mhm.start_ms is not None
        assert turn["start_ms"] + 800 <= mhm.start_ms < turn["end_ms"]
        assert reply.transcript == "Got it."
        assert len(client.of("session.input_transcript.delta")) == 1
