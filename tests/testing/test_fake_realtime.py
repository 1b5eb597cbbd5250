"""The fake Realtime GA server, driven by a plain `websockets` client over loopback."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus

from callbridge.testing.fake_realtime import FakeRealtimeServer, Reply, ToolCall
from callbridge.testing.fake_realtime_audio import (
    EnergyVad,
    SpeechStarted,
    SpeechStopped,
    VadSettings,
    encode_output,
    threshold_dbfs,
)
from callbridge.testing.openai_validation import validate_server_event
from callbridge.testing.speech import silence, speechlike

MODEL = "gpt-realtime-2.1"
AUTH = {"Authorization": "Bearer sk-test"}
PCMU = {"type": "audio/pcmu"}
REPLY_AUDIO = speechlike(0.5, seed=7)  # 4000 bytes, 5 deltas of 100 ms

Event = dict[str, Any]


class Client:
    """A bare client: JSON events out, every received event kept and checked against the SDK."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.received: list[Event] = []

    async def send(self, event: Event) -> None:
        await self.ws.send(json.dumps(event))

    async def recv(self) -> Event:
        async with asyncio.timeout(5.0):
            event: Event = json.loads(await self.ws.recv())
        validate_server_event(event)
        self.received.append(event)
        return event

    async def until(self, event_type: str) -> list[Event]:
        """Receive up to and including the next event of `event_type`; return them all."""
        events = [await self.recv()]
        while events[-1]["type"] != event_type:
            events.append(await self.recv())
        return events

    async def configure(self, **audio_input: Any) -> Event:
        audio = {"input": {"format": PCMU, **audio_input}, "output": {"format": PCMU}}
        await self.send({"type": "session.update", "session": {"type": "realtime", "audio": audio}})
        return (await self.until("session.updated"))[-1]

    async def speak(self, ulaw: bytes) -> None:
        """Send μ-law as 20 ms appends, faster than real time (the VAD runs on the audio clock)."""
        for start in range(0, len(ulaw), 160):
            chunk = base64.b64encode(ulaw[start : start + 160]).decode()
            await self.send({"type": "input_audio_buffer.append", "audio": chunk})


@asynccontextmanager
async def session(server: FakeRealtimeServer, *, pcmu: bool = True) -> AsyncIterator[Client]:
    async with connect(f"{server.url}?model={MODEL}", additional_headers=AUTH) as ws:
        client = Client(ws)
        assert (await client.recv())["type"] == "session.created"
        if pcmu:
            await client.configure()
        yield client


def types(events: list[Event]) -> list[str]:
    return [event["type"] for event in events]


def audio_of(events: list[Event], event_type: str = "response.output_audio.delta") -> bytes:
    return b"".join(base64.b64decode(e["delta"]) for e in events if e["type"] == event_type)


# ---- the VAD, without a server ------------------------------------------------------------


def test_vad_threshold_maps_linearly_around_the_configured_level() -> None:
    """server_vad threshold 0..1 spans 60 dB centred on the configured dBFS level."""
    assert threshold_dbfs(0.5, -40.0) == -40.0
    assert (threshold_dbfs(0.0, -40.0), threshold_dbfs(1.0, -40.0)) == (-70.0, -10.0)


def test_vad_reports_speech_start_with_padding_and_stop_where_silence_began() -> None:
    """Speech starts after start_ms of speech (minus prefix padding) and stops after the silence."""
    settings = VadSettings(-40.0, start_ms=60, prefix_padding_ms=100, silence_duration_ms=300)
    vad = EnergyVad(settings, rate=8000)
    tone = (np.sin(np.arange(8000) / 8000 * 2 * np.pi * 200) * 8000).astype(np.int16)
    quiet = np.zeros(4000, dtype=np.int16)
    events = vad.receive_samples(np.concatenate([quiet, tone, quiet]))
    assert events == [SpeechStarted(audio_start_ms=400), SpeechStopped(audio_end_ms=1500)]


# ---- handshake ----------------------------------------------------------------------------


async def test_handshake_without_bearer_token_is_refused_with_401() -> None:
    """A missing Authorization header gets HTTP 401 and is recorded as a violation."""
    async with FakeRealtimeServer() as server:
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"{server.url}?model={MODEL}")
        assert refused.value.response.status_code == 401
        assert len(server.violations) == 1
        assert "Authorization" in server.violations[0]


async def test_handshake_needs_the_realtime_path_and_only_a_model_query() -> None:
    """A wrong path is a 404 and any query besides `model` a 400."""
    async with FakeRealtimeServer() as server:
        base = server.url.removesuffix("/v1/realtime")
        for url, status in [
            (f"{base}/v1/chat?model={MODEL}", 404),
            (f"{server.url}?model={MODEL}&voice=marin", 400),
        ]:
            with pytest.raises(InvalidStatus) as refused:
                await connect(url, additional_headers=AUTH)
            assert refused.value.response.status_code == status
        assert len(server.violations) == 2


async def test_beta_header_gets_beta_api_shape_disabled_and_close_4000() -> None:
    """`OpenAI-Beta` is answered with the real API's error and a 4000 close."""
    async with FakeRealtimeServer() as server:
        headers = {**AUTH, "OpenAI-Beta": "realtime=v1"}
        async with connect(f"{server.url}?model={MODEL}", additional_headers=headers) as ws:
            event = json.loads(await ws.recv())
            assert event["error"]["code"] == "beta_api_shape_disabled"
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4000
        assert len(server.violations) == 1


async def test_reject_next_refuses_that_many_handshakes() -> None:
    """reject_next(2, 503) fails two handshakes, then connections succeed again."""
    async with FakeRealtimeServer() as server:
        server.reject_next(2, status=503)
        for _ in range(2):
            with pytest.raises(InvalidStatus) as refused:
                await connect(f"{server.url}?model={MODEL}", additional_headers=AUTH)
            assert refused.value.response.status_code == 503
        async with session(server, pcmu=False):
            pass
        assert server.handshake_attempts == 3
        assert server.violations == []


async def test_connection_records_its_handshake_and_every_event() -> None:
    """A connection keeps headers, path, query and events; wait_for_event finds client events."""
    async with FakeRealtimeServer() as server, session(server) as client:
        await client.send({"type": "input_audio_buffer.clear", "event_id": "evt_a"})
        assert (await server.wait_for_event("input_audio_buffer.clear"))["event_id"] == "evt_a"
        connection = server.connections[0]
        assert (connection.path, connection.query) == ("/v1/realtime", {"model": MODEL})
        assert connection.request_headers["Authorization"] == "Bearer sk-test"
        await client.recv()
        assert types(connection.sent_events) == types(client.received)
    await server.wait_for(lambda: connection.closed)
    assert connection.close_code == 1000


# ---- session ------------------------------------------------------------------------------


async def test_session_created_reports_pcm_24k_defaults() -> None:
    """The default session is PCM 24 kHz both ways with server VAD, like the real API."""
    async with FakeRealtimeServer() as server, session(server, pcmu=False) as client:
        created = client.received[0]["session"]
        assert created["id"].startswith("sess_")
        assert created["object"] == "realtime.session"
        assert created["model"] == MODEL
        assert created["expires_at"] > time.time()
        assert created["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}
        assert created["audio"]["input"]["turn_detection"]["type"] == "server_vad"


async def test_session_update_deep_merges_and_reports_the_whole_session() -> None:
    """Later updates keep earlier fields; session.updated carries the full effective config."""
    async with FakeRealtimeServer() as server, session(server) as client:
        update = {
            "type": "realtime",
            "instructions": "Be brief.",
            "audio": {"output": {"voice": "cedar"}},
        }
        await client.send({"type": "session.update", "session": update})
        updated = (await client.until("session.updated"))[-1]["session"]
        assert updated["instructions"] == "Be brief."
        assert updated["audio"]["output"] == {"format": PCMU, "voice": "cedar", "speed": 1.0}
        assert updated["audio"]["input"]["format"] == PCMU
        assert server.connections[0].session == updated
        assert server.violations == []


async def test_session_update_without_type_is_refused_and_not_applied() -> None:
    """Missing session.type: missing_required_parameter, the client's event_id, a violation."""
    async with FakeRealtimeServer() as server, session(server, pcmu=False) as client:
        update = {"audio": {"output": {"format": PCMU}}}
        await client.send({"type": "session.update", "event_id": "evt_1", "session": update})
        error = (await client.recv())["error"]
        assert (error["code"], error["param"], error["event_id"]) == (
            "missing_required_parameter",
            "session.type",
            "evt_1",
        )
        assert server.connections[0].session["audio"]["output"]["format"]["type"] == "audio/pcm"
        assert len(server.violations) == 1


async def test_beta_session_fields_are_unknown_parameters() -> None:
    """Beta `input_audio_format` at the top of the session is an unknown_parameter error."""
    async with FakeRealtimeServer() as server, session(server, pcmu=False) as client:
        update = {"type": "realtime", "input_audio_format": "g711_ulaw"}
        await client.send({"type": "session.update", "session": update})
        error = (await client.recv())["error"]
        assert (error["code"], error["param"]) == (
            "unknown_parameter",
            "session.input_audio_format",
        )
        assert len(server.violations) == 1


async def test_voice_cannot_change_once_audio_was_produced() -> None:
    """After the first assistant audio a voice change is refused."""
    fake = FakeRealtimeServer([Reply(audio=REPLY_AUDIO)], speed=50)
    async with fake as server, session(server) as client:
        await client.send({"type": "response.create"})
        await client.until("response.done")
        voice = {"type": "realtime", "audio": {"output": {"voice": "ash"}}}
        await client.send({"type": "session.update", "session": voice})
        assert (await client.recv())["error"]["param"] == "session.audio.output.voice"


# ---- a caller's turn ----------------------------------------------------------------------


async def test_caller_turn_runs_vad_commit_transcription_and_a_response() -> None:
    """Speech then silence gives the GA turn sequence and a reply whose deltas are its audio."""
    reply = Reply("Your order ships today.", audio=REPLY_AUDIO)
    fake = FakeRealtimeServer([reply], user_transcripts=["Where is my order?"])
    async with fake as server, session(server) as client:
        await client.configure(transcription={"model": "gpt-4o-mini-transcribe"})
        await client.speak(speechlike(1.0) + silence(0.8))
        events = await client.until("response.done")
        if "conversation.item.input_audio_transcription.completed" not in types(events):
            await client.until("conversation.item.input_audio_transcription.completed")
    turn = [t for t in types(client.received) if not t.startswith("response.output_audio")]
    start = turn.index("input_audio_buffer.speech_started")
    assert turn[start : start + 8] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "response.created",
        "rate_limits.updated",
        "response.output_item.added",
    ]
    by_type = {event["type"]: event for event in client.received}
    assert by_type["input_audio_buffer.speech_started"]["audio_start_ms"] == 0
    assert 960 <= by_type["input_audio_buffer.speech_stopped"]["audio_end_ms"] <= 1000
    transcription = by_type["conversation.item.input_audio_transcription.completed"]
    assert transcription["transcript"] == "Where is my order?"
    assert audio_of(client.received) == REPLY_AUDIO
    assert by_type["response.output_audio_transcript.done"]["transcript"] == reply.text
    done = by_type["response.done"]["response"]
    assert done["status"] == "completed"
    assert done["usage"]["output_token_details"]["audio_tokens"] == 10  # 0.5 s at 20/s
    assert done["usage"]["input_token_details"]["audio_tokens"] == 10  # 1.0 s at 10/s
    assert [item["role"] for item in server.connections[0].items] == ["user", "assistant"]
    assert server.violations == []


async def test_pcm_input_at_24k_runs_the_vad_on_the_same_audio_clock() -> None:
    """With the default audio/pcm input, 24 kHz PCM16 speech is detected at the same ms."""
    fake = FakeRealtimeServer([Reply(audio=REPLY_AUDIO)], speed=50)
    async with fake as server, session(server, pcmu=False) as client:
        pcm = encode_output(silence(0.5) + speechlike(1.0) + silence(0.8), "audio/pcm")
        for start in range(0, len(pcm), 960):  # 20 ms of 24 kHz PCM16
            chunk = base64.b64encode(pcm[start : start + 960]).decode()
            await client.send({"type": "input_audio_buffer.append", "audio": chunk})
        events = await client.until("input_audio_buffer.committed")
        assert events[-3]["audio_start_ms"] == 200  # speech at 500 ms minus 300 ms padding
        assert 1460 <= events[-2]["audio_end_ms"] <= 1500
        await client.until("response.done")
        assert server.violations == []


async def test_pcm_output_is_upsampled_to_24k_pcm16() -> None:
    """With the default audio/pcm output every μ-law byte becomes three 16-bit samples."""
    fake = FakeRealtimeServer([Reply(audio=REPLY_AUDIO)], speed=50)
    async with fake as server, session(server, pcmu=False) as client:
        await client.send({"type": "response.create"})
        events = await client.until("response.done")
        assert len(audio_of(events)) == len(REPLY_AUDIO) * 6
        item_id = events[-1]["response"]["output"][0]["id"]
        assert server.connections[0].item_audio_ms(item_id) == 500


async def test_say_exactly_instructions_speak_the_quoted_text_without_using_the_script() -> None:
    """A `Say exactly: "…"` greeting speaks that text; the next response uses the first reply."""
    fake = FakeRealtimeServer([Reply("Scripted.", audio=REPLY_AUDIO)], speed=50)
    async with fake as server, session(server) as client:
        greeting = {"instructions": 'Greet the caller. Say exactly: "Hello there."'}
        await client.send({"type": "response.create", "response": greeting})
        events = await client.until("response.done")
        assert events[-1]["response"]["output"][0]["content"][0]["transcript"] == "Hello there."
        await client.send({"type": "response.create"})
        events = await client.until("response.done")
        assert events[-1]["response"]["output"][0]["content"][0]["transcript"] == "Scripted."


async def test_reply_delay_holds_back_the_first_delta() -> None:
    """delay_ms is the model latency between response.created and the first output."""
    fake = FakeRealtimeServer([Reply(audio=REPLY_AUDIO, delay_ms=200)], speed=50)
    async with fake as server, session(server) as client:
        await client.send({"type": "response.create"})
        await client.until("response.created")
        started = time.monotonic()
        await client.until("response.output_audio.delta")
        assert time.monotonic() - started >= 0.19


async def test_echo_mode_replies_with_the_callers_own_audio() -> None:
    """In echo mode the reply audio is the caller's last committed turn."""
    caller = speechlike(0.6, seed=3)
    async with FakeRealtimeServer(echo=True, speed=50) as server, session(server) as client:
        await client.speak(caller + silence(0.7))
        events = await client.until("response.done")
        start = next(e for e in events if e["type"].endswith("speech_started"))["audio_start_ms"]
        end = next(e for e in events if e["type"].endswith("speech_stopped"))["audio_end_ms"]
        assert audio_of(events) == (caller + silence(0.7))[start * 8 : end * 8]


# ---- truncation ---------------------------------------------------------------------------


async def test_truncate_is_accepted_within_the_sent_audio_and_rejected_beyond_it() -> None:
    """Truncate works up to the item's sent duration; beyond it, or on user audio, it fails."""
    reply = Reply("one two three four", audio=REPLY_AUDIO)
    async with FakeRealtimeServer([reply], speed=50) as server, session(server) as client:
        await client.speak(speechlike(0.5) + silence(0.7))
        events = await client.until("response.done")
        assistant_id = events[-1]["response"]["output"][0]["id"]
        user_id = next(e for e in events if e["type"].endswith("committed"))["item_id"]

        async def truncate(item_id: str, ms: int) -> Event:
            await client.send(
                {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0,
                 "audio_end_ms": ms}
            )  # fmt: skip
            return await client.recv()

        beyond = await truncate(assistant_id, 600)
        assert beyond["error"]["message"] == "Audio content of 500ms is already shorter than 600ms"
        assert (await truncate(user_id, 100))["error"]["code"] == "unsupported_content_type"
        ok = await truncate(assistant_id, 250)
        assert ok["type"] == "conversation.item.truncated"
        assert ok["audio_end_ms"] == 250
        item = server.connections[0].items[-1]
        assert item["truncated_at_ms"] == 250
        assert item["content"][0]["transcript"] == "one two"
        assert server.truncate_errors == 2
        assert server.violations == []


async def test_truncate_with_fractional_ms_is_a_violation() -> None:
    """audio_end_ms must be an int: 10.5 is rejected, recorded and answered with an error."""
    async with FakeRealtimeServer() as server, session(server) as client:
        truncate = {"type": "conversation.item.truncate", "item_id": "item_x", "content_index": 0}
        await client.send({**truncate, "audio_end_ms": 10.5, "event_id": "evt_7"})
        error = (await client.recv())["error"]
        assert (error["code"], error["event_id"]) == ("invalid_type", "evt_7")
        assert len(server.violations) == 1
        assert server.truncate_errors == 1


# ---- barge-in and cancellation ------------------------------------------------------------


async def test_barge_in_sends_late_deltas_then_a_cancelled_response_done() -> None:
    """After speech_started the item gets exactly N late deltas, then response.done cancelled."""
    reply = Reply("A long answer " * 10, audio=speechlike(4.0))
    fake = FakeRealtimeServer([reply], speed=4, late_deltas_after_interrupt=2)
    async with fake as server, session(server) as client:
        await client.send({"type": "response.create"})
        await client.until("response.output_audio.delta")
        await client.speak(speechlike(0.3, seed=5))
        await client.until("input_audio_buffer.speech_started")
        after = await client.until("response.done")
    late = [e for e in after if e["type"] == "response.output_audio.delta"]
    assert len(late) == 2
    assert server.interrupted_audio == [base64.b64decode(e["delta"]) for e in late]
    assert [t for t in types(after) if not t.endswith("delta")] == [
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
    ]
    done = after[-1]["response"]
    assert done["status"] == "cancelled"
    assert done["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
    assert done["output"][0]["status"] == "incomplete"


async def test_without_interrupt_response_only_response_cancel_stops_the_reply() -> None:
    """interrupt_response=false keeps streaming through speech; response.cancel then cancels."""
    reply = Reply("A long answer", audio=speechlike(3.0))
    async with FakeRealtimeServer([reply], speed=4) as server, session(server) as client:
        await client.configure(turn_detection={"type": "server_vad", "interrupt_response": False})
        await client.send({"type": "response.create"})
        created = (await client.until("response.created"))[-1]["response"]
        await client.speak(speechlike(0.3, seed=5))
        await client.until("input_audio_buffer.speech_started")
        await client.until("response.output_audio.delta")
        await client.send({"type": "response.cancel", "response_id": created["id"]})
        done = (await client.until("response.done"))[-1]["response"]
        assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
        await client.send({"type": "response.cancel"})
        assert (await client.recv())["error"]["code"] == "response_cancel_not_active"
        assert server.interrupted_audio == []
        assert server.violations == []


async def test_response_create_while_active_is_a_conflict_not_a_violation() -> None:
    """A second response.create during a response is refused and counted, not a violation."""
    fake = FakeRealtimeServer([Reply(audio=REPLY_AUDIO)], speed=4)
    async with fake as server, session(server) as client:
        await client.send({"type": "response.create"})
        await client.send({"type": "response.create", "event_id": "evt_2"})
        events = await client.until("error")
        assert events[-1]["error"]["code"] == "conversation_already_has_active_response"
        assert events[-1]["error"]["event_id"] == "evt_2"
        await client.until("response.done")
        assert server.active_response_conflicts == 1
        assert server.violations == []


# ---- tools --------------------------------------------------------------------------------


async def test_tool_call_round_trip_uses_the_next_reply_after_the_output() -> None:
    """A scripted tool call, its output (bad call_id refused), then the next scripted reply."""
    replies = [
        Reply(tool_call=ToolCall("lookup_order", {"order_id": "42"}, call_id="call_42")),
        Reply("It ships today.", audio=REPLY_AUDIO),
    ]
    async with FakeRealtimeServer(replies, speed=50) as server, session(server) as client:
        await client.send({"type": "response.create"})
        events = await client.until("response.done")
        assert "response.output_audio.delta" not in types(events)
        arguments = next(e for e in events if e["type"] == "response.function_call_arguments.done")
        assert (arguments["call_id"], arguments["name"]) == ("call_42", "lookup_order")
        assert json.loads(arguments["arguments"]) == {"order_id": "42"}
        output = {"type": "function_call_output", "call_id": "call_nope", "output": "{}"}
        await client.send({"type": "conversation.item.create", "item": output})
        assert (await client.recv())["error"]["param"] == "item.call_id"
        output["call_id"] = "call_42"
        await client.send({"type": "conversation.item.create", "item": output})
        await client.until("conversation.item.done")
        await client.send({"type": "response.create"})
        events = await client.until("response.done")
        assert audio_of(events) == REPLY_AUDIO
        kinds = [item["type"] for item in server.connections[0].items]
        assert kinds == ["function_call", "function_call_output", "message"]
        assert len(server.violations) == 1
        assert "call_nope" in server.violations[0]


# ---- conversation items -------------------------------------------------------------------


async def test_item_create_honours_previous_item_id() -> None:
    """Items append by default, go first with "root", and an unknown previous id is refused."""
    async with FakeRealtimeServer() as server, session(server) as client:

        async def create(text: str, **position: str) -> Event:
            item = {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": text}],
            }
            await client.send({"type": "conversation.item.create", "item": item, **position})
            return await client.recv()

        first = await create("first")
        await client.recv()  # conversation.item.done
        root = await create("zeroth", previous_item_id="root")
        await client.recv()
        assert root["previous_item_id"] is None
        assert (await create("x", previous_item_id="item_nope"))["type"] == "error"
        texts = [item["content"][0]["text"] for item in server.connections[0].items]
        assert texts == ["zeroth", "first"]
        assert first["previous_item_id"] is None


async def test_manual_commit_needs_100_ms_and_creates_no_response() -> None:
    """Without VAD: commit under 100 ms is an error; a real commit adds the item, no response."""
    async with FakeRealtimeServer() as server, session(server) as client:
        await client.configure(turn_detection=None)
        await client.speak(speechlike(0.05))
        await client.send({"type": "input_audio_buffer.commit"})
        assert (await client.recv())["error"]["code"] == "input_audio_buffer_commit_empty"
        await client.speak(speechlike(0.2))
        await client.send({"type": "input_audio_buffer.commit"})
        await client.until("conversation.item.done")
        await client.send({"type": "input_audio_buffer.clear"})
        assert (await client.recv())["type"] == "input_audio_buffer.cleared"
        assert server.connections[0].item_audio_ms(server.connections[0].items[0]["id"]) == 250
        assert "response.created" not in types(client.received)
        assert server.violations == []


async def test_out_of_band_text_response_stays_out_of_the_conversation() -> None:
    """conversation "none" + text modality streams output_text and adds no item."""
    fake = FakeRealtimeServer([Reply("A short summary of the call.")], speed=50)
    async with fake as server, session(server) as client:
        response = {"conversation": "none", "output_modalities": ["text"]}
        await client.send({"type": "response.create", "response": response})
        events = await client.until("response.done")
        text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
        assert text == "A short summary of the call."
        assert "conversation.item.added" not in types(events)
        assert server.connections[0].items == []


# ---- failures on purpose ------------------------------------------------------------------


async def test_drop_when_aborts_the_tcp_connection_without_a_close_frame() -> None:
    """drop_when aborts just before the nth event; the client sees 1006 with no close frame."""
    async with FakeRealtimeServer([Reply(audio=REPLY_AUDIO)], speed=50) as server:
        server.drop_when("response.output_audio.delta", nth=2)
        async with session(server) as client:
            await client.send({"type": "response.create"})
            with pytest.raises(ConnectionClosedError) as closed:
                await client.until("response.done")
            assert closed.value.rcvd is None
            assert client.ws.close_code == 1006
        assert len(audio_of(client.received)) == 800
        await server.wait_for(lambda: server.connections[0].closed)
        assert server.connections[0].close_code == 1006


async def test_drop_all_aborts_every_open_connection() -> None:
    """drop_all aborts all sockets at once."""
    async with FakeRealtimeServer() as server, session(server) as one, session(server) as two:
        await server.drop_all()
        for client in (one, two):
            with pytest.raises(ConnectionClosedError):
                await client.recv()
            assert client.ws.close_code == 1006


async def test_session_expiry_closes_with_1001_like_the_real_api() -> None:
    """session_max_seconds closes with 1001 and the real API's reason text."""
    async with FakeRealtimeServer(session_max_seconds=0.3) as server, session(server) as client:
        with pytest.raises(ConnectionClosed) as closed:
            await client.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1001
        assert closed.value.rcvd.reason == "Your session hit the maximum duration of 0.005 minutes."


async def test_send_error_reaches_every_open_connection() -> None:
    """send_error injects an `error` event on each open connection."""
    async with FakeRealtimeServer() as server, session(server) as one, session(server) as two:
        await server.send_error("server_error", "The server had an error.", type_="server_error")
        for client in (one, two):
            error = (await client.recv())["error"]
            assert (error["type"], error["code"]) == ("server_error", "server_error")


async def test_bad_client_input_is_recorded_and_the_connection_survives() -> None:
    """Malformed JSON and unknown event types are violations answered with errors."""
    async with FakeRealtimeServer() as server, session(server) as client:
        await client.ws.send("{not json")
        assert (await client.recv())["error"]["code"] == "invalid_json"
        await client.send({"type": "response.audio.delta", "event_id": "evt_9"})
        assert (await client.recv())["error"]["event_id"] == "evt_9"
        await client.send({"type": "input_audio_buffer.clear"})
        assert (await client.recv())["type"] == "input_audio_buffer.cleared"
        assert len(server.violations) == 2
        assert server.connections[0].client_events[-1] == {"type": "input_audio_buffer.clear"}


# ---- whole calls --------------------------------------------------------------------------


async def test_strict_scripted_call_emits_only_valid_events_and_records_no_violation() -> None:
    """A full GA call (greeting, turn, tool call, answer, barge-in truncate) under strict=True."""
    replies = [
        Reply(tool_call=ToolCall("lookup_order", {"order_id": "42"})),
        Reply("It ships today, and it will arrive on Friday.", audio=speechlike(2.0)),
    ]
    fake = FakeRealtimeServer(replies, strict=True, speed=8, user_transcripts=["Where is 42?"])
    async with fake as server, session(server) as client:
        tool = {"type": "function", "name": "lookup_order", "parameters": {"type": "object"}}
        update = {"type": "realtime", "instructions": "Help callers.", "tools": [tool]}
        await client.send({"type": "session.update", "session": update})
        await client.configure(transcription={"model": "gpt-4o-mini-transcribe"})
        greeting = {"instructions": "Say exactly 'Thanks for calling.'"}
        await client.send({"type": "response.create", "response": greeting})
        await client.until("response.done")
        await client.speak(speechlike(0.8) + silence(0.7))
        call = (await client.until("response.function_call_arguments.done"))[-1]
        await client.until("response.done")
        output = {"type": "function_call_output", "call_id": call["call_id"], "output": '"Friday"'}
        await client.send({"type": "conversation.item.create", "item": output})
        await client.send({"type": "response.create"})
        delta = (await client.until("response.output_audio.delta"))[-1]
        await client.speak(speechlike(0.3, seed=9))
        await client.until("response.done")
        truncate = {"item_id": delta["item_id"], "content_index": 0, "audio_end_ms": 100}
        await client.send({"type": "conversation.item.truncate", **truncate})
        await client.until("conversation.item.truncated")
    assert server.violations == []
    assert server.truncate_errors == 0
    for event in server.connections[0].sent_events:
        validate_server_event(event)


async def test_fifty_concurrent_calls_are_served() -> None:
    """Fifty simultaneous sessions each get a complete greeting."""
    greeting = {"instructions": 'Say exactly: "Hi."'}

    async def call(server: FakeRealtimeServer) -> bytes:
        async with session(server) as client:
            await client.send({"type": "response.create", "response": greeting})
            return audio_of(await client.until("response.done"))

    async with FakeRealtimeServer(speed=20) as server:
        audios = await asyncio.gather(*(call(server) for _ in range(50)))
    assert len(set(audios)) == 1
    assert len(audios[0]) > 0
    assert len(server.connections) == 50
    assert server.violations == []
