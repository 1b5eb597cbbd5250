"""Strict validation of GPT-Live events against `openai.types.live`."""

from __future__ import annotations

import pytest

from callbridge.testing.live_validation import (
    ClientEventInvalid,
    ServerEventInvalid,
    validate_live_client_event,
    validate_live_server_event,
)
from tests.testing.live_client import responses_delegation, start_event

TOOL = {"type": "function", "name": "check", "strict": True, "description": "d",
        "parameters": {"type": "object", "properties": {}, "additionalProperties": False}}


def test_the_reference_session_start_for_a_twilio_call_is_valid() -> None:
    """The §2.2 shape (pcmu 8000, Responses delegation with a function tool, input) passes."""
    event = start_event(
        instructions="You are Ava.",
        delegation={**responses_delegation(tools=[TOOL], parallel_tool_calls=False,
                                           reasoning={"effort": "low"}),
                    "acknowledgement_delay_ms": 400},
        input=[{"type": "message", "role": "developer",
                "content": [{"type": "input_text", "text": "Caller ID matches."}]}],
        store=False,
    )
    assert validate_live_client_event(event)["session"]["delegation"]["responses"]["tools"]


@pytest.mark.parametrize(
    ("event", "code", "param"),
    [
        ({"type": "session.commentary.append", "content": "hi", "delegation_id": None,
          "role": "x"}, "unknown_parameter", "role"),
        ({"type": "session.commentary.append", "content": "hi"}, "missing_required_parameter",
         "delegation_id"),
        ({"type": "response.item.create", "item": {"type": "function_call_output",
                                                   "call_id": "c", "output": "o", "x": 1}},
         "unknown_parameter", "item.x"),
        ({"type": "response.create", "response": {}}, "unknown_parameter", "response"),
        ({"type": "session.input_audio.append", "audio": 5}, "invalid_type", "audio"),
        ({"type": "input_audio_buffer.append", "audio": ""}, "invalid_value", "type"),
    ],
)
def test_client_events_with_unknown_missing_or_mistyped_fields_are_refused(
    event: dict[str, object], code: str, param: str
) -> None:
    """Each refusal names the API's error code and the offending parameter."""
    with pytest.raises(ClientEventInvalid) as refused:
        validate_live_client_event(event)
    assert (refused.value.code, refused.value.param) == (code, param)


def test_server_events_must_match_the_sdk_without_undeclared_fields() -> None:
    """An `event_id` on an audio delta or an unknown key is refused; a proper event passes."""
    validate_live_server_event({"type": "session.output_audio.delta", "delta": "//8="})
    with pytest.raises(ServerEventInvalid, match="undeclared"):
        validate_live_server_event(
            {"type": "session.output_audio.delta", "delta": "//8=", "event_id": "e"})
    with pytest.raises(ServerEventInvalid, match="unknown server event type"):
        validate_live_server_event({"type": "session.created", "event_id": "e"})


def test_the_responses_event_inside_response_event_is_validated_too() -> None:
    """`response.event.event` must be a valid Responses streaming event."""
    inner = {"type": "response.output_item.done", "output_index": 0, "sequence_number": 1,
             "item": {"id": "rs_1", "type": "reasoning", "summary": []}}
    wrapper = {"type": "response.event", "event_id": "e", "delegation_id": "del_1"}
    validate_live_server_event({**wrapper, "event": inner})
    with pytest.raises(ServerEventInvalid, match="sequence_number"):
        validate_live_server_event(
            {**wrapper, "event": {k: v for k, v in inner.items() if k != "sequence_number"}})
