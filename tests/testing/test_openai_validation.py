"""Strict checks of Realtime GA events against the installed `openai` SDK's types."""

from __future__ import annotations

import re
from typing import Any

import pytest

from callbridge.testing.openai_validation import (
    ClientEventInvalid,
    ServerEventInvalid,
    validate_client_event,
    validate_server_event,
)

PCMU_SESSION_UPDATE: dict[str, Any] = {
    "type": "session.update",
    "event_id": "evt_cli_1",
    "session": {
        "type": "realtime",
        "model": "gpt-realtime-2.1",
        "output_modalities": ["audio"],
        "instructions": "You are a phone agent.",
        "audio": {
            "input": {
                "format": {"type": "audio/pcmu"},
                "noise_reduction": {"type": "near_field"},
                "transcription": {"model": "gpt-4o-mini-transcribe", "language": "en"},
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 500,
                    "create_response": True,
                    "interrupt_response": True,
                    "idle_timeout_ms": 8000,
                },
            },
            "output": {"format": {"type": "audio/pcmu"}, "voice": "marin", "speed": 1.0},
        },
        "tools": [
            {
                "type": "function",
                "name": "lookup_order",
                "description": "Look up an order.",
                "parameters": {
                    "type": "object",
                    "properties": {"order_id": {"type": "string"}},
                    "required": ["order_id"],
                },
            }
        ],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "reasoning": {"effort": "low"},
        "tracing": "auto",
        "truncation": {"type": "retention_ratio", "retention_ratio": 0.8},
    },
}

TRUNCATE = {"type": "conversation.item.truncate", "item_id": "item_1", "content_index": 0}


def user_text(**part: Any) -> dict[str, Any]:
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", **part}]}
    return {"type": "conversation.item.create", "item": item}


# ---- client events ------------------------------------------------------------------------


def test_full_pcmu_session_update_passes_unchanged() -> None:
    """The reference's complete pcmu session.update validates and comes back as plain data."""
    assert validate_client_event(PCMU_SESSION_UPDATE) == PCMU_SESSION_UPDATE


@pytest.mark.parametrize(
    "event",
    [
        {"type": "input_audio_buffer.append", "audio": "AAAA"},
        {**TRUNCATE, "audio_end_ms": 1500},
        {"type": "response.create", "response": {"instructions": "Say exactly 'Hi'."}},
        {"type": "response.cancel", "response_id": "resp_1"},
        user_text(text="Hi"),
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": "call_1", "output": "{}"},
        },
    ],
)
def test_everyday_client_events_pass(event: dict[str, Any]) -> None:
    """The events a Twilio bridge sends every call validate."""
    assert validate_client_event(event) == event


def test_item_references_in_response_create_pass() -> None:
    """response.create may reference items by id (only the WithReferences type allows it)."""
    response = {
        "conversation": "none",
        "output_modalities": ["text"],
        "input": [{"type": "item_reference", "id": "item_123"}],
        "metadata": {"purpose": "summary"},
    }
    event = {"type": "response.create", "response": response}
    assert validate_client_event(event) == event


@pytest.mark.parametrize(
    ("event", "code", "param"),
    [
        (
            {"type": "session.update", "session": {"audio": {"output": {"voice": "marin"}}}},
            "missing_required_parameter",
            "session.type",
        ),
        (
            {
                "type": "session.update",
                "session": {"type": "realtime", "input_audio_format": "g711_ulaw"},
            },
            "unknown_parameter",
            "session.input_audio_format",
        ),
        ({**TRUNCATE, "audio_end_ms": 10.5}, "invalid_type", "audio_end_ms"),
        ({**TRUNCATE, "audio_end_ms": "10"}, "invalid_type", "audio_end_ms"),
        (user_text(txt="Hi"), "unknown_parameter", "item.content[0].txt"),
        ({"type": "response.audio.delta", "delta": ""}, "invalid_value", "type"),
        ({"delta": ""}, "invalid_value", "type"),
    ],
)
def test_invalid_client_events_fail_with_the_api_error_code(
    event: dict[str, Any], code: str, param: str
) -> None:
    """Beta shapes, missing session.type, float ms, typos in lazy lists and unknown types fail."""
    with pytest.raises(ClientEventInvalid) as invalid:
        validate_client_event(event)
    assert (invalid.value.code, invalid.value.param) == (code, param)


def test_client_error_message_is_one_short_line() -> None:
    """A failure names the first problem only, not one error per union member."""
    tool = {"type": "function", "nme": "lookup_order"}
    with pytest.raises(ClientEventInvalid) as invalid:
        validate_client_event(
            {"type": "session.update", "session": {"type": "realtime", "tools": [tool]}}
        )
    assert str(invalid.value) == "session.update: unknown parameter 'session.tools[0].nme'"
    assert isinstance(invalid.value, ValueError)


# ---- server events ------------------------------------------------------------------------


def test_valid_server_event_returns_the_sdk_model() -> None:
    """A correct output audio delta validates into the SDK's model."""
    event = {
        "type": "response.output_audio.delta",
        "event_id": "event_1",
        "response_id": "resp_1",
        "item_id": "item_1",
        "output_index": 0,
        "content_index": 0,
        "delta": "AAAA",
    }
    assert type(validate_server_event(event)).__name__ == "ResponseAudioDeltaEvent"


def test_session_ids_the_sdk_does_not_declare_are_allowed() -> None:
    """`id`, `object` and `expires_at` on the session are real wire fields, so they pass."""
    session = {"type": "realtime", "id": "sess_1", "object": "realtime.session", "expires_at": 1}
    validate_server_event({"type": "session.created", "event_id": "event_1", "session": session})


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"type": "response.audio.delta", "event_id": "e"}, "unknown server event type"),
        (
            {"type": "input_audio_buffer.speech_started", "event_id": "e", "item_id": "i"},
            "input_audio_buffer.speech_started: audio_start_ms: Field required",
        ),
        (
            {"type": "input_audio_buffer.cleared", "event_id": "e", "extra": 1},
            "input_audio_buffer.cleared: undeclared fields ['$.extra']",
        ),
    ],
)
def test_invalid_server_events_fail_with_one_readable_message(
    event: dict[str, Any], message: str
) -> None:
    """Beta names, missing fields and undeclared fields are rejected with a short message."""
    with pytest.raises(ServerEventInvalid, match="^" + re.escape(message)):
        validate_server_event(event)
