"""OpenAI Realtime GA events: what we send validates against the SDK, what we receive parses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from callbridge.core import realtime_events as rt
from callbridge.core.agent import AgentProfile
from callbridge.core.history import ConversationHistory
from callbridge.errors import RealtimeProtocolError
from callbridge.testing.openai_validation import validate_client_event, validate_server_event

LOOKUP_ORDER: dict[str, Any] = {
    "type": "function",
    "name": "lookup_order",
    "description": "Look up an order by its id.",
    "parameters": {
        "type": "object",
        "properties": {"order_id": {"type": "string"}},
        "required": ["order_id"],
    },
}

# ---------------------------------------------------------------- client events (we send)


def _history_items() -> list[dict[str, Any]]:
    history = ConversationHistory()
    history.caller_said("item_u1", "Where is my order A12?")
    history.tool_called("call_001", "lookup_order", '{"order_id":"A12"}')
    history.tool_returned("call_001", '{"status":"shipped"}')
    history.agent_said("item_a1", "It shipped yesterday.")
    return history.items()


USER_MESSAGE = {
    "type": "message",
    "role": "user",
    "content": [{"type": "input_text", "text": "Where is my order A12?"}],
}
ASSISTANT_MESSAGE = {
    "type": "message",
    "role": "assistant",
    "content": [{"type": "output_text", "text": "It shipped yesterday."}],
}
FUNCTION_CALL = {
    "type": "function_call",
    "call_id": "call_001",
    "name": "lookup_order",
    "arguments": '{"order_id":"A12"}',
}
FUNCTION_CALL_OUTPUT = {
    "type": "function_call_output",
    "call_id": "call_001",
    "output": '{"status":"shipped"}',
}

CLIENT_EVENTS = [
    pytest.param(rt.SessionUpdate(AgentProfile().session()), id="session-server-vad"),
    pytest.param(
        rt.SessionUpdate(AgentProfile(turn_detection="semantic_vad").session()),
        id="session-semantic-vad",
    ),
    pytest.param(
        rt.SessionUpdate(AgentProfile(turn_detection="none").session()), id="session-no-vad"
    ),
    pytest.param(
        rt.SessionUpdate(
            AgentProfile(tools=(LOOKUP_ORDER,), language="en", interrupt_response=False).session()
        ),
        id="session-tools-language",
    ),
    pytest.param(
        rt.SessionUpdate(AgentProfile(transcription_model=None).session()),
        id="session-no-transcription",
    ),
    pytest.param(rt.AppendAudio("//////////8="), id="append"),
    pytest.param(rt.TruncateItem("item_008", 0, 1500), id="truncate"),
    pytest.param(rt.TruncateItem("item_008", 0, 1500, "truncate_3"), id="truncate-event-id"),
    pytest.param(rt.CreateResponse(), id="response-create"),
    pytest.param(
        rt.CreateResponse(AgentProfile(greeting="Hi").greeting_response()), id="response-greeting"
    ),
    pytest.param(rt.CancelResponse(), id="cancel"),
    pytest.param(rt.CancelResponse("resp_001"), id="cancel-id"),
    pytest.param(rt.CreateItem(USER_MESSAGE), id="item-user"),
    pytest.param(rt.CreateItem(ASSISTANT_MESSAGE), id="item-assistant"),
    pytest.param(rt.CreateItem(FUNCTION_CALL), id="item-function-call"),
    pytest.param(rt.CreateItem(FUNCTION_CALL_OUTPUT), id="item-function-output"),
]


@pytest.mark.parametrize("event", CLIENT_EVENTS)
def test_every_client_event_validates_against_the_ga_sdk_types(event: rt.ClientEvent) -> None:
    """serialize() output passes the strict GA SDK types unchanged: no unknown key, no coercion."""
    payload = json.loads(event.serialize())
    assert validate_client_event(payload) == payload


def _keys(value: object, path: str = "$") -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield f"{path}.{key}"
            yield from _keys(inner, f"{path}.{key}")
    elif isinstance(value, list):
        for inner in value:
            yield from _keys(inner, f"{path}[]")


BETA_KEYS = frozenset({
    "input_audio_format", "output_audio_format", "modalities", "input_audio_transcription",
    "input_audio_noise_reduction", "max_response_output_tokens", "temperature",
})
BETA_SESSION_PATHS = frozenset({"$.session.voice", "$.session.turn_detection"})


@pytest.mark.parametrize("event", CLIENT_EVENTS)
def test_no_client_event_carries_a_beta_field_name(event: rt.ClientEvent) -> None:
    """No key anywhere is a retired beta name, and the session has no top-level voice or VAD."""
    paths = set(_keys(json.loads(event.serialize())))
    beta = {p for p in paths if p.rsplit(".", 1)[-1] in BETA_KEYS} | (paths & BETA_SESSION_PATHS)
    assert beta == set()


def test_the_session_update_asks_for_pcmu_both_ways() -> None:
    """Both audio formats are stated as audio/pcmu, and the voice sits under audio.output."""
    session = json.loads(rt.SessionUpdate(AgentProfile(voice="cedar").session()).serialize())
    audio = session["session"]["audio"]
    assert (audio["input"]["format"], audio["output"]["format"], audio["output"]["voice"]) == (
        {"type": "audio/pcmu"},
        {"type": "audio/pcmu"},
        "cedar",
    )


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        pytest.param(
            rt.AppendAudio("//8="),
            {"type": "input_audio_buffer.append", "audio": "//8="},
            id="append",
        ),
        pytest.param(
            rt.TruncateItem("item_008", 0, 1500),
            {
                "type": "conversation.item.truncate",
                "item_id": "item_008",
                "content_index": 0,
                "audio_end_ms": 1500,
            },
            id="truncate",
        ),
        pytest.param(
            rt.TruncateItem("item_008", 1, 40, "truncate_3"),
            {
                "type": "conversation.item.truncate",
                "item_id": "item_008",
                "content_index": 1,
                "audio_end_ms": 40,
                "event_id": "truncate_3",
            },
            id="truncate-event-id",
        ),
        pytest.param(rt.CreateResponse(), {"type": "response.create"}, id="response-create"),
        pytest.param(rt.CancelResponse(), {"type": "response.cancel"}, id="cancel"),
        pytest.param(
            rt.CancelResponse("resp_001"),
            {"type": "response.cancel", "response_id": "resp_001"},
            id="cancel-id",
        ),
        pytest.param(
            rt.CreateItem(USER_MESSAGE),
            {"type": "conversation.item.create", "item": USER_MESSAGE},
            id="item",
        ),
    ],
)
def test_client_events_serialize_to_their_exact_wire_shape(
    event: rt.ClientEvent, expected: dict[str, Any]
) -> None:
    """Each client event serializes to exactly the documented object, optional fields omitted."""
    assert json.loads(event.serialize()) == expected


def test_the_greeting_response_asks_for_the_exact_words() -> None:
    """A greeting becomes response.create whose instructions quote it and whose metadata says so."""
    response = AgentProfile(greeting="Hi, this is Ada.").greeting_response()
    assert json.loads(rt.CreateResponse(response).serialize()) == {
        "type": "response.create",
        "response": {
            "instructions": 'Say exactly: "Hi, this is Ada." Do not add anything else.',
            "metadata": {"purpose": "greeting"},
        },
    }


def test_every_item_the_history_produces_is_a_valid_item_create() -> None:
    """User, assistant, function_call and function_call_output items from the history validate."""
    items = _history_items()
    assert items == [USER_MESSAGE, FUNCTION_CALL, FUNCTION_CALL_OUTPUT, ASSISTANT_MESSAGE]
    for item in items:
        payload = json.loads(rt.CreateItem(item).serialize())
        assert validate_client_event(payload) == payload


def test_non_ascii_text_is_sent_as_is() -> None:
    """Instructions with non-ASCII text are written as UTF-8, not \\u escapes, and read back."""
    text = rt.SessionUpdate(AgentProfile(instructions="Sprich Deutsch. Grüß Gott! ☎").session())
    serialized = text.serialize()
    assert "Grüß Gott! ☎" in serialized
    assert json.loads(serialized)["session"]["instructions"] == "Sprich Deutsch. Grüß Gott! ☎"


# ---------------------------------------------------------------- server events (we receive)

SESSION: dict[str, Any] = {
    "type": "realtime",
    "object": "realtime.session",
    "id": "sess_C9G5QPteg4UIbotdKLoYQ",
    "model": "gpt-realtime-2.1",
    "output_modalities": ["audio"],
    "instructions": "Be brief.",
    "audio": {
        "input": {
            "format": {"type": "audio/pcmu"},
            "transcription": None,
            "noise_reduction": None,
            "turn_detection": {
                "type": "server_vad",
                "threshold": 0.5,
                "prefix_padding_ms": 300,
                "silence_duration_ms": 200,
                "idle_timeout_ms": None,
                "create_response": True,
                "interrupt_response": True,
            },
        },
        "output": {"format": {"type": "audio/pcmu"}, "voice": "marin", "speed": 1.0},
    },
    "tools": [],
    "tool_choice": "auto",
    "max_output_tokens": "inf",
    "tracing": None,
    "prompt": None,
    "expires_at": 1756324625,
    "include": None,
}
USAGE: dict[str, Any] = {
    "total_tokens": 1321,
    "input_tokens": 1270,
    "output_tokens": 51,
    "input_token_details": {
        "text_tokens": 292,
        "audio_tokens": 978,
        "image_tokens": 0,
        "cached_tokens": 640,
        "cached_tokens_details": {"text_tokens": 256, "audio_tokens": 384, "image_tokens": 0},
    },
    "output_token_details": {"text_tokens": 20, "audio_tokens": 31},
}


def _response(status: str, details: dict[str, Any] | None, usage: Any) -> dict[str, Any]:
    return {
        "object": "realtime.response",
        "id": "resp_001",
        "status": status,
        "status_details": details,
        "output": [],
        "conversation_id": "conv_001",
        "output_modalities": ["audio"],
        "max_output_tokens": "inf",
        "audio": {"output": {"format": {"type": "audio/pcmu"}, "voice": "marin"}},
        "usage": usage,
        "metadata": None,
    }


SERVER_EVENTS: list[tuple[str, dict[str, Any], rt.ServerEvent]] = [
    (
        "session-created",
        {"type": "session.created", "event_id": "event_1", "session": SESSION},
        rt.SessionCreated(SESSION),
    ),
    (
        "session-updated",
        {"type": "session.updated", "event_id": "event_2", "session": SESSION},
        rt.SessionUpdated(SESSION),
    ),
    (
        "error",
        {
            "type": "error",
            "event_id": "event_890",
            "error": {
                "type": "invalid_request_error",
                "code": "conversation_already_has_active_response",
                "message": "Conversation already has an active response in progress: resp_001.",
                "param": None,
                "event_id": "evt_cli_7",
            },
        },
        rt.ServerError(
            type="invalid_request_error",
            code="conversation_already_has_active_response",
            message="Conversation already has an active response in progress: resp_001.",
            event_id="evt_cli_7",
        ),
    ),
    (
        "speech-started",
        {
            "type": "input_audio_buffer.speech_started",
            "event_id": "event_1516",
            "audio_start_ms": 1000,
            "item_id": "item_003",
        },
        rt.SpeechStarted(audio_start_ms=1000, item_id="item_003"),
    ),
    (
        "speech-stopped",
        {
            "type": "input_audio_buffer.speech_stopped",
            "event_id": "event_1718",
            "audio_end_ms": 2000,
            "item_id": "item_003",
        },
        rt.SpeechStopped(audio_end_ms=2000, item_id="item_003"),
    ),
    (
        "response-created",
        {
            "type": "response.created",
            "event_id": "event_2930",
            "response": _response("in_progress", None, None),
        },
        rt.ResponseCreated(response_id="resp_001"),
    ),
    (
        "audio-delta",
        {
            "type": "response.output_audio.delta",
            "event_id": "event_4950",
            "response_id": "resp_001",
            "item_id": "item_008",
            "output_index": 0,
            "content_index": 0,
            "delta": "//8AAP//",
        },
        rt.AudioDelta(response_id="resp_001", item_id="item_008", content_index=0,
                      delta="//8AAP//"),
    ),
    (
        "audio-done",
        {
            "type": "response.output_audio.done",
            "event_id": "event_5152",
            "response_id": "resp_001",
            "item_id": "item_008",
            "output_index": 0,
            "content_index": 1,
        },
        rt.AudioDone(response_id="resp_001", item_id="item_008", content_index=1),
    ),
    (
        "transcript-delta",
        {
            "type": "response.output_audio_transcript.delta",
            "event_id": "event_4546",
            "response_id": "resp_001",
            "item_id": "item_008",
            "output_index": 0,
            "content_index": 0,
            "delta": "Hello, how can I ",
        },
        rt.TranscriptDelta(response_id="resp_001", item_id="item_008", delta="Hello, how can I "),
    ),
    (
        "transcript-done",
        {
            "type": "response.output_audio_transcript.done",
            "event_id": "event_4748",
            "response_id": "resp_001",
            "item_id": "item_008",
            "output_index": 0,
            "content_index": 0,
            "transcript": "Hello, how can I help you today?",
        },
        rt.TranscriptDone(
            response_id="resp_001",
            item_id="item_008",
            transcript="Hello, how can I help you today?",
        ),
    ),
    (
        "input-transcription",
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "event_id": "event_2122",
            "item_id": "item_003",
            "content_index": 0,
            "transcript": "Where is my order?",
            "usage": {"type": "duration", "seconds": 1.2},
        },
        rt.InputTranscription(item_id="item_003", transcript="Where is my order?"),
    ),
    (
        "function-call-done",
        {
            "type": "response.function_call_arguments.done",
            "event_id": "event_5556",
            "response_id": "resp_002",
            "item_id": "fc_001",
            "output_index": 0,
            "call_id": "call_001",
            "name": "lookup_order",
            "arguments": '{"order_id":"A12"}',
        },
        rt.FunctionCallDone(
            response_id="resp_002",
            item_id="fc_001",
            call_id="call_001",
            name="lookup_order",
            arguments='{"order_id":"A12"}',
        ),
    ),
    (
        "response-done-cancelled",
        {
            "type": "response.done",
            "event_id": "event_3132",
            "response": _response(
                "cancelled", {"type": "cancelled", "reason": "turn_detected"}, USAGE
            ),
        },
        rt.ResponseDone(
            response_id="resp_001", status="cancelled", reason="turn_detected", usage=USAGE
        ),
    ),
    (
        "response-done-completed",
        {
            "type": "response.done",
            "event_id": "event_3133",
            "response": _response("completed", None, None),
        },
        rt.ResponseDone(response_id="resp_001", status="completed", reason=None, usage={}),
    ),
    (
        "item-truncated",
        {
            "type": "conversation.item.truncated",
            "event_id": "event_2526",
            "item_id": "item_008",
            "content_index": 0,
            "audio_end_ms": 1500,
        },
        rt.ItemTruncated(item_id="item_008", audio_end_ms=1500),
    ),
]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [pytest.param(payload, expected, id=name) for name, payload, expected in SERVER_EVENTS],
)
def test_each_handled_server_event_parses_to_its_dataclass(
    payload: dict[str, Any], expected: rt.ServerEvent
) -> None:
    """A GA server event the core acts on becomes the matching dataclass with the right fields."""
    assert rt.parse(json.dumps(payload)) == expected


def test_the_server_event_fixtures_are_real_ga_events() -> None:
    """Every payload above passes the SDK's strict server types: the parse tests use real shapes."""
    for _, payload, _ in SERVER_EVENTS:
        validate_server_event(payload)


@pytest.mark.parametrize(
    ("session", "expected"),
    [
        pytest.param(SESSION, ("audio/pcmu", "audio/pcmu"), id="pcmu"),
        pytest.param(
            {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}},
                       "output": {"format": {"type": "audio/pcm", "rate": 24000}}}},
            ("audio/pcm", "audio/pcm"),
            id="pcm",
        ),
        pytest.param({"type": "realtime"}, (None, None), id="no-audio"),
        pytest.param({"audio": {"output": {"format": "g711_ulaw"}}}, (None, None), id="beta"),
    ],
)
def test_session_updated_reports_the_effective_audio_formats(
    session: dict[str, Any], expected: tuple[str | None, str | None]
) -> None:
    """audio_format() reads audio.<direction>.format.type, or None when it is not stated."""
    updated = rt.parse(json.dumps({"type": "session.updated", "session": session}))
    assert isinstance(updated, rt.SessionUpdated)
    assert (updated.audio_format("input"), updated.audio_format("output")) == expected


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(
            {"type": "rate_limits.updated", "event_id": "event_5758", "rate_limits": [
                {"name": "requests", "limit": 1000, "remaining": 999, "reset_seconds": 60}]},
            id="rate-limits",
        ),
        pytest.param(
            {"type": "conversation.item.added", "event_id": "event_1",
             "previous_item_id": None, "item": USER_MESSAGE},
            id="item-added",
        ),
        pytest.param(
            {"type": "response.audio.delta", "event_id": "event_4950", "response_id": "resp_001",
             "item_id": "item_008", "output_index": 0, "content_index": 0, "delta": "//8="},
            id="beta-audio-delta",
        ),
        pytest.param(
            {"type": "response.audio_transcript.delta", "response_id": "resp_001",
             "item_id": "item_008", "delta": "Hel"},
            id="beta-transcript-delta",
        ),
        pytest.param({"type": "conversation.item.created", "item": {}}, id="beta-item-created"),
        pytest.param({"type": "something.new"}, id="future-type"),
    ],
)
def test_types_the_core_does_not_act_on_become_unknown(payload: dict[str, Any]) -> None:
    """Unknown, unhandled and retired beta types are kept whole as Unknown, never an error."""
    assert rt.parse(json.dumps(payload)) == rt.Unknown(type=payload["type"], data=payload)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("not json", id="prose"),
        pytest.param('{"type": "error"', id="truncated"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param("[]", id="array"),
        pytest.param('"response.done"', id="string"),
        pytest.param("null", id="null"),
        pytest.param("{}", id="no-type"),
        pytest.param('{"type": 5}', id="type-number"),
        pytest.param('{"type": null}', id="type-null"),
        pytest.param(
            '{"type": "input_audio_buffer.speech_started", "audio_start_ms": 10}',
            id="speech-started-without-item",
        ),
        pytest.param(
            '{"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 10}',
            id="speech-stopped-without-item",
        ),
        pytest.param(
            '{"type": "response.output_audio.delta", "response_id": "r", "item_id": "i"}',
            id="delta-without-audio",
        ),
        pytest.param(
            '{"type": "response.output_audio.delta", "item_id": "i", "delta": "//8="}',
            id="delta-without-response",
        ),
        pytest.param(
            '{"type": "response.output_audio.delta", "response_id": "r", "item_id": "i",'
            ' "content_index": "first", "delta": "//8="}',
            id="delta-content-index-word",
        ),
        pytest.param('{"type": "response.output_audio.done", "item_id": "i"}',
                     id="audio-done-without-response"),
        pytest.param('{"type": "response.output_audio_transcript.delta", "response_id": "r",'
                     ' "item_id": "i"}', id="transcript-delta-without-delta"),
        pytest.param('{"type": "response.created"}', id="created-without-response"),
        pytest.param('{"type": "response.created", "response": {}}', id="created-without-id"),
        pytest.param('{"type": "response.created", "response": "resp_1"}',
                     id="created-response-string"),
        pytest.param('{"type": "response.done", "response": {"status": "completed"}}',
                     id="done-without-id"),
        pytest.param('{"type": "response.done", "response": [1]}', id="done-response-list"),
        pytest.param('{"type": "response.output_audio.delta", "response_id": "r", "item_id": [1],'
                     ' "delta": ""}', id="delta-item-id-list"),
        pytest.param(
            '{"type": "response.function_call_arguments.done", "name": "f", "arguments": "{}"}',
            id="function-call-without-call-id",
        ),
        pytest.param('{"type": "conversation.item.input_audio_transcription.completed",'
                     ' "transcript": "hi"}', id="transcription-without-item"),
        pytest.param('{"type": "conversation.item.truncated", "item_id": "i"}',
                     id="truncated-without-end"),
        pytest.param('{"type": "session.created"}', id="session-created-without-session"),
        pytest.param('{"type": "session.updated", "session": 5}', id="session-number"),
        pytest.param('{"type": "error", "error": ["boom"]}', id="error-list"),
    ],
)
def test_a_malformed_server_event_raises_only_realtime_protocol_error(text: str | bytes) -> None:
    """Not JSON, no string type, or a handled type missing a field → RealtimeProtocolError."""
    with pytest.raises(RealtimeProtocolError):
        rt.parse(text)


@pytest.mark.parametrize(
    "text",
    [
        '{"type":"input_audio_buffer.speech_started","item_id":"i","audio_start_ms":Infinity}',
        '{"type":"conversation.item.truncated","item_id":"i","audio_end_ms":1e400}',
        '{"type":"response.output_audio.delta","response_id":"r","item_id":"i",'
        '"content_index":-Infinity,"delta":"//8="}',
    ],
    ids=["speech-started", "truncated-overflowing-literal", "delta-content-index"],
)
def test_an_infinite_number_is_a_protocol_error(text: str) -> None:
    """A ±Infinity (or overflowing 1e400) millisecond or index field is RealtimeProtocolError."""
    with pytest.raises(RealtimeProtocolError):
        rt.parse(text)


def test_a_deeply_nested_event_is_a_protocol_error() -> None:
    """An event nested deeper than the JSON decoder can follow is RealtimeProtocolError."""
    with pytest.raises(RealtimeProtocolError):
        rt.parse('{"type":"x","a":' + "[" * 100_000)


@pytest.mark.parametrize("delta", [5, None, ["//8="]], ids=["number", "null", "list"])
def test_an_audio_delta_that_is_not_text_is_a_protocol_error(delta: object) -> None:
    """response.output_audio.delta must carry its audio as a base64 string."""
    with pytest.raises(RealtimeProtocolError):
        rt.parse(json.dumps({"type": "response.output_audio.delta", "response_id": "r",
                             "item_id": "i", "content_index": 0, "delta": delta}))


# Arbitrary text, bytes and JSON against the parser: tests/fuzz/test_realtime_events.py.


def test_optional_fields_of_the_wrong_type_are_read_as_absent() -> None:
    """A usage or status_details that is not an object is ignored, not fatal."""
    event = rt.parse('{"type": "response.done", "response": {"id": "r", "status": "completed",'
                     ' "status_details": [1], "usage": "unavailable"}}')
    assert event == rt.ResponseDone("r", "completed", None, {})
