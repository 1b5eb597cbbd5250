"""GPT-Live events: what we send validates against the SDK strictly; what we receive parses."""

from __future__ import annotations

import json
import typing
from typing import Any

import pytest
from pydantic import Field, TypeAdapter

from callbridge.core import live_events as live
from callbridge.errors import LiveProtocolError
from callbridge.testing.live_validation import validate_live_client_event
from callbridge.testing.openai_validation import ClientEventInvalid

SESSION = {
    "model": "gpt-live-1.1",
    "instructions": "You are Ava.",
    "audio": {"format": {"type": "audio/pcmu", "rate": 8000}, "output": {"voice": "marin"}},
    "delegation": {"type": "responses", "responses": {
        "model": "gpt-5.1", "instructions": "You are the backend.", "parallel_tool_calls": True,
        "tools": [{"type": "function", "name": "check_availability", "strict": True,
                   "description": "Free slots on a date.",
                   "parameters": {"type": "object", "properties": {"date": {"type": "string"}},
                                  "required": ["date"], "additionalProperties": False}}]}},
    "input": [{"type": "message", "role": "user",
               "content": [{"type": "input_text", "text": "Hi, it's Jane."}]}],
    "store": False,
}

CLIENT_EVENTS: list[live.ClientEvent] = [
    live.SessionStart(SESSION, event_id="evt_start"),
    live.SessionStart({"model": "gpt-live-1", "audio": {
        "format": {"type": "audio/pcmu", "rate": 8000}}, "delegation": {"type": "client"}}),
    live.SessionUpdate({"delegation": {"type": "responses", "responses": {"model": "gpt-5.1"}}}),
    live.SessionClose(),
    live.SessionClose(event_id="close_1"),
    live.AppendAudio("//////8="),
    live.MuteInput(),
    live.MuteInput(muted=False),
    live.AppendContext("commentary", "Greet the caller now: say hello."),
    live.AppendContext("thinking", "Still searching.", delegation_id="del_1", event_id="p1"),
    live.AppendContext("instructions", "The caller pressed 2."),
    live.FunctionCallOutput("call_1", '{"slots":["Tue 15:00"]}', event_id="out_1"),
    live.ContinueBackend(),
    live.ContinueBackend(event_id="cont_1"),
]


@pytest.mark.parametrize("event", CLIENT_EVENTS, ids=lambda e: type(e).__name__)
def test_every_client_event_validates_strictly_against_the_sdk(event: live.ClientEvent) -> None:
    """Each serialized client event passes the SDK's types with unknown keys refused."""
    payload = json.loads(event.serialize())
    assert validate_live_client_event(payload) == payload


def test_context_appends_always_carry_the_delegation_id_key() -> None:
    """The server requires `delegation_id` even when null; without it the event is refused."""
    payload = json.loads(live.AppendContext("commentary", "Hello").serialize())
    assert payload == {"type": "session.commentary.append", "content": "Hello",
                       "delegation_id": None}
    del payload["delegation_id"]
    with pytest.raises(ClientEventInvalid, match="delegation_id"):
        validate_live_client_event(payload)


def test_an_unknown_context_channel_is_refused_when_built() -> None:
    """Only instructions, thinking and commentary exist; a typo fails at once, not on the wire."""
    with pytest.raises(ValueError, match="context channel"):
        live.AppendContext("comentary", "Hello")


def test_caller_audio_is_forwarded_as_the_text_twilio_sent() -> None:
    """The append carries the base64 payload byte for byte, never decoded and re-encoded."""
    assert live.AppendAudio("f39/fw==").serialize() == (
        '{"type":"session.input_audio.append","audio":"f39/fw=="}')


def test_text_is_escaped_in_json_however_odd() -> None:
    """Quotes, newlines and non-ASCII text survive a round trip through the wire."""
    content = 'Say "hi"\nthen €5 — 你好'
    assert json.loads(live.AppendContext("commentary", content).serialize())["content"] == content


# ---------------------------------------------------------------- server events

STARTED = {"type": "session.started", "event_id": "ev_1", "client_event_id": "evt_start",
           "session": {"id": "live_abc", "expires_at": 1795000000, "model": "gpt-live-1.1",
                       "status": "active",
                       "audio": {"format": {"type": "audio/pcmu", "rate": 8000},
                                 "output": {"voice": "marin"}},
                       "delegation": {"type": "responses", "acknowledgement_delay_ms": 400,
                                      "responses": {"model": "gpt-5.1"}},
                       "store": False}}


def sdk_server_event(payload: dict[str, Any]) -> object:
    """The SDK's own model for a server event: proof a test input is a real shape."""
    union = typing.get_args(_server_union())[0]  # the SDK's marker is not pydantic's
    adapter: TypeAdapter[Any] = TypeAdapter(
        typing.cast(Any, typing.Annotated[union, Field(discriminator="type")]))
    return adapter.validate_python(payload)


def _server_union() -> Any:
    from openai.types.live import ServerEvent

    return ServerEvent


def backend(event: dict[str, Any], delegation_id: str | None = "del_x") -> dict[str, Any]:
    return {"type": "response.event", "event_id": "ev_9", "delegation_id": delegation_id,
            "event": event}


SERVER_EVENTS: list[tuple[dict[str, Any], live.ServerEvent]] = [
    (STARTED, live.SessionStarted("live_abc", 1795000000.0, "gpt-live-1.1", STARTED["session"])),
    ({"type": "session.output_audio.delta", "event_id": "ev_2", "delta": "//8="},
     live.AudioDelta("//8=")),
    ({"type": "session.input_transcript.delta", "event_id": "ev_3", "delta": " can I move",
      "start_ms": 5200, "end_ms": 6400},
     live.TranscriptDelta("input", " can I move", 5200, 6400)),
    ({"type": "session.output_transcript.delta", "event_id": "ev_4", "delta": " Sure.",
      "start_ms": 6500, "end_ms": 7000},
     live.TranscriptDelta("output", " Sure.", 6500, 7000)),
    ({"type": "session.delegation.created", "event_id": "ev_5", "offset_ms": 6500,
      "delegation": {"id": "del_abc", "type": "delegation", "target": "client"}},
     live.DelegationCreated("del_abc", "client", None, 6500)),
    ({"type": "session.delegation.created", "event_id": "ev_6", "offset_ms": 8000,
      "delegation": {"id": "del_x", "type": "delegation", "target": "responses",
                     "response_id": "resp_123"}},
     live.DelegationCreated("del_x", "responses", "resp_123", 8000)),
    ({"type": "session.commentary.appended", "event_id": "ev_7", "client_event_id": "res_1",
      "start_ms": 9800, "end_ms": 10300},
     live.ContextAppended("commentary", "res_1", 9800, 10300)),
    ({"type": "session.usage.updated", "event_id": "ev_8", "usage": {"seconds": 61.5}},
     live.UsageUpdated(61.5)),
    ({"type": "session.closed", "event_id": "ev_10", "reason": "close_requested",
      "session": STARTED["session"], "usage": {"seconds": 93.2}},
     live.SessionClosed("close_requested", 93.2)),
    ({"type": "error", "event_id": "ev_11", "error": {
        "type": "invalid_request_error", "code": "function_call_outputs_required",
        "message": "Submit the pending function call outputs before response.create.",
        "client_event_id": "cont_1"}},
     live.ServerError("invalid_request_error", "function_call_outputs_required",
                      "Submit the pending function call outputs before response.create.",
                      "cont_1")),
    ({"type": "info", "event_id": "ev_12", "code": "data_channel_permissions", "message": "ok"},
     live.Info("data_channel_permissions", "ok")),
    (backend({"type": "response.output_item.done", "output_index": 1, "sequence_number": 3,
              "item": {"id": "fc_1", "type": "function_call", "status": "completed",
                       "call_id": "call_1", "name": "check_availability",
                       "arguments": '{"date":"2026-12-01"}'}}),
     live.BackendEvent("del_x", live.BackendFunctionCall(
         "call_1", "check_availability", '{"date":"2026-12-01"}'))),
    (backend({"type": "response.output_item.done", "output_index": 0, "sequence_number": 2,
              "item": {"id": "rs_1", "type": "reasoning", "summary": []}}),
     live.BackendEvent("del_x", live.BackendOther("response.output_item.done"))),
    (backend({"type": "response.output_item.done", "output_index": 1, "sequence_number": 2,
              "item": {"id": "fc_2", "type": "function_call", "status": "in_progress",
                       "call_id": "call_2", "name": "f", "arguments": "{"}}),
     live.BackendEvent("del_x", live.BackendOther("response.output_item.done"))),
    (backend({"type": "response.completed", "sequence_number": 9, "response": {
        "id": "resp_123", "output": [], "usage": {"input_tokens": 120, "output_tokens": 30}}}),
     live.BackendEvent("del_x", live.BackendCompleted(
         {"input_tokens": 120, "output_tokens": 30}))),
    (backend({"type": "response.failed", "sequence_number": 9, "response": {
        "id": "resp_124", "error": {"code": "server_error", "message": "backend down"}}},
        delegation_id=None),
     live.BackendEvent(None, live.BackendFailed("failed", "backend down"))),
]


@pytest.mark.parametrize(("payload", "expected"), SERVER_EVENTS,
                         ids=[p["type"] + str(i) for i, (p, _) in enumerate(SERVER_EVENTS)])
def test_server_events_parse_into_what_the_bridge_acts_on(
        payload: dict[str, Any], expected: live.ServerEvent) -> None:
    """Each server event (a shape the SDK accepts) becomes its dataclass with the needed fields."""
    sdk_server_event(payload)
    assert live.parse(json.dumps(payload)) == expected


def test_the_session_reports_its_audio_format() -> None:
    """session.started says which format the server resolved; a missing one reads as None."""
    started = live.parse(json.dumps(STARTED))
    assert isinstance(started, live.SessionStarted)
    assert started.audio_format() == ("audio/pcmu", 8000)
    bare = live.parse(json.dumps({**STARTED, "session": {"id": "live_b"}}))
    assert isinstance(bare, live.SessionStarted)
    assert bare.audio_format() is None
    assert bare.expires_at is None


def test_an_unknown_event_type_is_kept_whole_not_an_error() -> None:
    """A new server event type passes through as Unknown with its data."""
    payload = {"type": "session.output_audio.fixture.played", "event_id": "ev_1"}
    assert live.parse(json.dumps(payload)) == live.Unknown(payload["type"], payload)


@pytest.mark.parametrize("text", [
    "not json", "[]", '{"type": 3}', '{"no": "type"}',
    '{"type": "session.output_audio.delta"}',
    '{"type": "session.output_audio.delta", "delta": 5}',
    '{"type": "session.input_transcript.delta", "delta": "x", "start_ms": "1", "end_ms": 2}',
    '{"type": "session.input_transcript.delta", "delta": "x", "start_ms": true, "end_ms": 2}',
    '{"type": "session.started", "session": {"id": 7}}',
    '{"type": "session.usage.updated", "usage": {"seconds": "a minute"}}',
    '{"type": "session.delegation.created", "delegation": {"target": "client"}}',
    '{"type": "response.event", "event": {"type": "response.output_item.done", "item": '
    '{"type": "function_call", "status": "completed", "name": "f"}}}',
    '{"type": "response.event", "event": "response.completed"}',
])
def test_malformed_events_raise_only_the_protocol_error(text: str) -> None:
    """Not JSON, no type, or a field the bridge keys on missing or mistyped: LiveProtocolError."""
    with pytest.raises(LiveProtocolError):
        live.parse(text)
