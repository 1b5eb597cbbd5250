"""Fuzzing the OpenAI side: `realtime_events.parse` raises only `RealtimeProtocolError`, and
`CallSession.receive_realtime` never raises, whatever the server sends.

Until fac2905 (and the nested-usage and session-audio follow-up) it did: the parser checked that
fields were present, not their types, so a list as an id, a string as `usage` or a number as a
token-details object reached the session, which raised; in the server that killed the call's
upstream reader. The shapes hypothesis found are kept below as regression cases.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbridge.core import realtime_events as rt
from callbridge.errors import RealtimeProtocolError
from tests.fuzz.sessions import play_realtime, session
from tests.fuzz.strategies import (
    ANY_REALTIME_FRAME,
    ANY_TYPED_EVENTS,
    WELL_TYPED_EVENTS,
    mutated,
)

REAL_EVENT = {"type": "response.output_audio.delta", "event_id": "event_1",
              "response_id": "resp_1", "item_id": "item_1", "output_index": 0,
              "content_index": 0, "delta": "//////////8="}


def parses_or_protocol_error(frame: str | bytes) -> None:
    try:
        event = rt.parse(frame)
    except RealtimeProtocolError:
        return
    assert isinstance(event, rt.ServerEvent)


@settings(max_examples=300, deadline=None)
@given(ANY_REALTIME_FRAME)
def test_any_frame_parses_or_raises_the_protocol_error(frame: str | bytes) -> None:
    """Text, bytes, any JSON, events with any field values: an event or RealtimeProtocolError."""
    parses_or_protocol_error(frame)


@settings(max_examples=150, deadline=None)
@given(mutated(json.dumps(REAL_EVENT)))
def test_a_real_event_with_bytes_flipped_parses_or_raises_the_protocol_error(
    frame: bytes,
) -> None:
    """An audio delta damaged in transit: same contract."""
    parses_or_protocol_error(frame)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["pcmu", "pcm16"]), st.sampled_from([None, "Hello."]),
       st.lists(WELL_TYPED_EVENTS, min_size=1, max_size=15))
def test_no_sequence_of_well_typed_events_makes_the_session_raise(
    audio_format: str, greeting: str | None, events: list[dict[str, Any]],
) -> None:
    """Events of the documented field types, any values, in any order: the session never raises."""
    play_realtime(session(audio_format, greeting=greeting), events)


@settings(max_examples=300, deadline=None)
@given(st.lists(ANY_TYPED_EVENTS, min_size=1, max_size=10))
def test_no_sequence_of_events_of_any_field_types_makes_the_session_raise(
    events: list[dict[str, Any]],
) -> None:
    """Events holding any JSON at any depth: dropped as malformed or handled, never raised."""
    play_realtime(session(), events)


WRONGLY_TYPED = [
    pytest.param({"type": "response.done", "response": {"id": "r", "usage": "unavailable"}},
                 id="usage-a-string"),
    pytest.param({"type": "response.done", "response": {"id": {}}}, id="response-id-an-object"),
    pytest.param({"type": "input_audio_buffer.speech_started", "item_id": []},
                 id="speech-started-item-id-a-list"),
    pytest.param({"type": "input_audio_buffer.speech_stopped", "item_id": []},
                 id="speech-stopped-item-id-a-list"),
    pytest.param({"type": "error", "error": {"code": ["server_error"]}}, id="error-code-a-list"),
    pytest.param({"type": "error", "error": {"event_id": 5}}, id="error-event-id-a-number"),
    pytest.param({"type": "response.output_audio.delta", "response_id": [], "item_id": "i",
                  "delta": ""}, id="delta-response-id-a-list"),
    pytest.param({"type": "conversation.item.input_audio_transcription.completed",
                  "item_id": []}, id="transcription-item-id-a-list"),
    pytest.param({"type": "response.function_call_arguments.done", "call_id": "c",
                  "name": [], "arguments": "{}"}, id="function-name-a-list"),
    pytest.param({"type": "response.done", "response": {"id": "r", "usage": {
        "input_token_details": 5}}}, id="usage-details-a-number"),
    pytest.param({"type": "response.done", "response": {"id": "r", "usage": {
        "input_token_details": {"cached_tokens_details": "n/a"}}}},
        id="cached-details-a-string"),
    pytest.param({"type": "session.updated", "session": {"audio": "pcmu"}},
                 id="session-audio-a-string"),
    pytest.param({"type": "session.updated", "session": {"audio": {"input": "pcmu"}}},
                 id="session-audio-input-a-string"),
]


@pytest.mark.parametrize("event", WRONGLY_TYPED)
def test_an_event_with_a_wrongly_typed_field_is_dropped_as_malformed(
    event: dict[str, Any],
) -> None:
    """The event is counted as malformed (or ignored) and the session does not raise."""
    call = session()
    call.receive_realtime(json.dumps(event), 1.0)


def test_a_transcript_delta_that_is_not_text_does_not_break_the_turn() -> None:
    """A numeric transcript delta is dropped; finishing the turn does not raise."""
    call = session()
    call.receive_realtime(json.dumps({"type": "response.output_audio.delta",
                                      "response_id": "r", "item_id": "i", "delta": "//8="}), 1.0)
    call.receive_realtime(json.dumps({"type": "response.output_audio_transcript.delta",
                                      "response_id": "r", "item_id": "i", "delta": 5}), 1.1)
    call.twilio_closed(1.2)
