"""The load harness's echo upstream: what it confirms and how it cuts echoed audio into responses,
and, speaking GPT-Live, that it stays a valid GPT-Live server whose echo keeps the callers' tags.

One `EchoSession` (or `LiveEchoSession`) driven with the texts a bridge sends, its replies recorded
by a fake socket.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from benchmarks.load.echo_upstream import AppendCounts, EchoSession, LiveEchoSession
from benchmarks.load.frames import tag_payload

from callbridge.core.live_events import AppendAudio, SessionClose, SessionStart
from callbridge.core.live_silence import SILENCE_FRAME
from callbridge.testing.live_validation import validate_live_server_event


class RecordingSocket:
    """Stands in for the WebSocket: keeps every event the session sends."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def send_text(self, text: str) -> bool:
        self.events.append(json.loads(text))
        return True


def _session(audio: str, response_frames: int) -> tuple[EchoSession, RecordingSocket]:
    socket = RecordingSocket()
    return EchoSession(socket, response_frames, audio), socket  # type: ignore[arg-type]


def _append(audio: bytes) -> bytes:
    return (b'{"type":"input_audio_buffer.append","audio":"' + base64.b64encode(audio)
            + b'"}')


def test_pcm16_session_update_is_confirmed_as_pcm_at_24_khz_both_ways() -> None:
    """With --audio pcm16 the bridge's session.update is answered with the format it asked for."""
    echo, socket = _session("pcm16", 100)
    echo.on_event(b'{"type":"session.update","session":{}}')
    [updated] = socket.events
    expected = {"format": {"type": "audio/pcm", "rate": 24000}}
    assert updated["type"] == "session.updated"
    assert updated["session"]["audio"] == {"input": expected, "output": expected}


def test_a_delta_crossing_a_responses_end_is_cut_on_the_20_ms_boundary() -> None:
    """pcm16, one frame (960 bytes) per response: 1500 bytes come back as 960 bytes closing one
    response and 540 bytes opening the next, in order."""
    echo, socket = _session("pcm16", 1)
    audio = bytes(range(256)) * 5 + bytes(220)
    echo.on_event(_append(audio[:1500]))
    kinds = [event["type"] for event in socket.events]
    assert kinds == ["response.created", "response.output_audio.delta",
                     "response.output_audio.done", "response.done",
                     "response.created", "response.output_audio.delta"]
    deltas = [base64.b64decode(e["delta"]) for e in socket.events if "delta" in e]
    assert [len(d) for d in deltas] == [960, 540]
    assert b"".join(deltas) == audio[:1500]
    assert socket.events[1]["item_id"] != socket.events[5]["item_id"]


def test_an_empty_append_gets_no_delta() -> None:
    """callbridge's PCM16 path appends "" while libsoxr holds audio back; a model sends nothing."""
    echo, socket = _session("pcm16", 100)
    echo.on_event(_append(b""))
    assert socket.events == []


def test_pcmu_responses_still_hold_response_frames_frames_of_160_bytes() -> None:
    """pcmu, 2 frames per response: four 160-byte appends make two responses of two deltas."""
    echo, socket = _session("pcmu", 2)
    for _ in range(4):
        echo.on_event(_append(bytes(160)))
    kinds = [event["type"] for event in socket.events]
    one = ["response.created", "response.output_audio.delta", "response.output_audio.delta",
           "response.output_audio.done", "response.done"]
    assert kinds == one + one


def test_the_gpt_live_echo_starts_on_session_start_and_echoes_each_frame_at_once() -> None:
    """--api live: session.start → session.started (μ-law 8 kHz); every append comes straight
    back as one output delta with the same audio; session.close → session.closed with the
    seconds of audio heard."""
    socket = RecordingSocket()
    echo = LiveEchoSession(socket)  # type: ignore[arg-type]
    echo.on_event(b'{"type":"session.start","session":{"model":"gpt-live-1.1"}}')
    frame = bytes(range(160))
    echo.on_event(b'{"type":"session.input_audio.append","audio":"'
                  + base64.b64encode(frame) + b'"}')
    echo.on_event(json.dumps({"type": "session.input_audio.append",
                              "audio": base64.b64encode(frame).decode()}).encode())
    echo.on_event(b'{"type":"session.close"}')
    kinds = [event["type"] for event in socket.events]
    assert kinds == ["session.started", "session.output_audio.delta",
                     "session.output_audio.delta", "session.closed"]
    assert socket.events[0]["session"]["audio"]["format"] == {"type": "audio/pcmu",
                                                              "rate": 8000}
    assert [base64.b64decode(e["delta"]) for e in socket.events[1:3]] == [frame, frame]
    assert socket.events[3]["usage"] == {"seconds": 0.04}


def _live_session() -> tuple[LiveEchoSession, RecordingSocket, AppendCounts]:
    socket, counts = RecordingSocket(), AppendCounts()
    return LiveEchoSession(socket, counts), socket, counts  # type: ignore[arg-type]


def test_every_event_of_the_gpt_live_echo_is_a_valid_gpt_live_server_event() -> None:
    """What callbridge sends (its own serializers) gets answers the SDK's GPT-Live server event
    types accept strictly: no undeclared field (the audio delta carries no event_id)."""
    echo, socket, _ = _live_session()
    echo.on_event(SessionStart({"model": "gpt-live-1.1"}).serialize().encode())
    echo.on_event(AppendAudio(tag_payload(7, 1)).serialize().encode())
    echo.on_event(SessionClose().serialize().encode())
    assert [e["type"] for e in socket.events] == ["session.started",
                                                   "session.output_audio.delta",
                                                   "session.closed"]
    for event in socket.events:
        validate_live_server_event(event)


def test_the_gpt_live_echo_gives_back_the_tagged_frame_byte_for_byte() -> None:
    """A caller's tagged frame, appended by callbridge, comes back as the very same base64 text,
    so the callers match it by tag as on the Realtime path."""
    echo, socket, _ = _live_session()
    echo.on_event(AppendAudio(tag_payload(3, 42)).serialize().encode())
    assert socket.events == [{"type": "session.output_audio.delta", "delta": tag_payload(3, 42)}]


def test_the_gpt_live_echo_counts_the_bridges_silence_apart_from_the_callers_audio() -> None:
    """callbridge's filler for stalled input (μ-law silence) is echoed too, and counted as silent;
    a tagged frame is not."""
    echo, socket, counts = _live_session()
    for payload in (tag_payload(1, 1), SILENCE_FRAME, SILENCE_FRAME, tag_payload(1, 2)):
        echo.on_event(AppendAudio(payload).serialize().encode())
    assert len(socket.events) == 4
    assert (counts.appends, counts.silent) == (4, 2)
    assert json.loads(counts.as_json()) == {"appends": 4, "silent": 2}
