"""Hypothesis strategies for the fuzz suite: JSON of any shape, frames and events shaped like
Twilio's and OpenAI's (right names, any values), real frames mutated byte by byte.

Every strategy is bounded (depth, length) so a property runs in well under a second per example.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import strategies as st

SIGNED_CALL_SID = "CA" + "0" * 32
STREAM_SID = "MZ" + "1" * 32

JSON_SCALARS: st.SearchStrategy[Any] = (
    st.none() | st.booleans() | st.integers() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20)
    | st.sampled_from(["", "0", "-1", "1e400", "²", "٣", " 7 ", "null", "//8=", "!!!"])
)
JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=8,
)


def json_text(value: object) -> str:
    """`value` as the JSON text a peer would send (NaN and Infinity as Python writes them)."""
    return json.dumps(value)


def shaped(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with any subset of `fields`, each either its usual kind of value or any JSON."""
    return st.fixed_dictionaries(
        {}, optional={name: strategy | JSON_VALUES for name, strategy in fields.items()})


def mutated(text: str) -> st.SearchStrategy[bytes]:
    """`text` as UTF-8 with bytes replaced, inserted or deleted at random places."""
    original = text.encode()

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        data = bytearray(original)
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, max(0, len(data) - 1)))
            action = draw(st.sampled_from(["replace", "insert", "delete"]))
            byte = draw(st.integers(0, 255))
            if action == "replace" and data:
                data[at] = byte
            elif action == "insert":
                data.insert(at, byte)
            elif data:
                del data[at]
        return bytes(data)

    return mutate()


# ---------------------------------------------------------------- Twilio Media Streams

SILENCE_B64 = base64.b64encode(b"\xff" * 160).decode()
_DIGITS_TEXT = st.integers(0, 10**7).map(str)

TWILIO_FRAMES: st.SearchStrategy[dict[str, Any]] = st.one_of(
    st.fixed_dictionaries({"event": st.just("connected"), "protocol": st.just("Call"),
                           "version": st.just("1.0.0")}),
    st.fixed_dictionaries({"event": st.just("media"), "media": shaped({
        "track": st.just("inbound"), "chunk": _DIGITS_TEXT, "timestamp": _DIGITS_TEXT,
        "payload": st.just(SILENCE_B64) | st.text(max_size=12)})}),
    st.fixed_dictionaries({"event": st.just("mark"), "mark": shaped({"name": st.text()})}),
    st.fixed_dictionaries({"event": st.just("dtmf"), "dtmf": shaped({
        "digit": st.sampled_from(list("0123456789*#")), "track": st.just("inbound_track")})}),
    st.fixed_dictionaries({"event": st.just("start"), "start": shaped({
        "streamSid": st.just(STREAM_SID) | st.text(max_size=40),
        "callSid": st.just(SIGNED_CALL_SID) | st.text(max_size=40),
        "accountSid": st.text(max_size=34), "tracks": st.just(["inbound"]),
        "mediaFormat": shaped({"encoding": st.just("audio/x-mulaw"),
                               "sampleRate": st.just(8000), "channels": st.just(1)}),
        "customParameters": st.dictionaries(st.text(max_size=8), st.text(max_size=8),
                                            max_size=3)})}),
    st.fixed_dictionaries({"event": st.just("stop"), "stop": shaped({
        "callSid": st.text(max_size=34), "accountSid": st.text(max_size=34)})}),
    st.fixed_dictionaries({"event": st.text(max_size=10) | JSON_VALUES}),
)
"""Frames with Twilio's event names and field names; every value either right or anything."""

ANY_TWILIO_FRAME: st.SearchStrategy[str | bytes] = st.one_of(
    TWILIO_FRAMES.map(json_text), JSON_VALUES.map(json_text), st.text(max_size=60),
    st.binary(max_size=60))


# ---------------------------------------------------------------- OpenAI Realtime

_ID = st.sampled_from(["item_1", "item_2", "resp_1", "resp_2", "call_1"]) | st.text(max_size=8)
_INT = st.integers(-(2**40), 2**40)
_AUDIO = st.sampled_from([SILENCE_B64, "", "//8=", "not base64!", "/w=="])
_USAGE = st.fixed_dictionaries({}, optional={
    "total_tokens": _INT, "input_tokens": _INT, "output_tokens": _INT,
    "input_token_details": st.fixed_dictionaries({}, optional={
        "text_tokens": _INT, "audio_tokens": _INT, "cached_tokens": _INT,
        "cached_tokens_details": st.fixed_dictionaries({}, optional={
            "text_tokens": _INT, "audio_tokens": _INT})}),
    "output_token_details": st.fixed_dictionaries({}, optional={
        "text_tokens": _INT, "audio_tokens": _INT})})
_FORMAT = st.fixed_dictionaries({"type": st.sampled_from(["audio/pcmu", "audio/pcm", "x"])})
_SESSION = st.fixed_dictionaries({}, optional={"audio": st.fixed_dictionaries({}, optional={
    "input": st.fixed_dictionaries({}, optional={"format": _FORMAT}),
    "output": st.fixed_dictionaries({}, optional={"format": _FORMAT})})})

REALTIME_FIELDS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "session.created": {"session": _SESSION},
    "session.updated": {"session": _SESSION},
    "error": {"error": st.fixed_dictionaries({}, optional={
        "type": st.text(max_size=12), "message": st.text(max_size=12),
        "code": st.sampled_from(["server_error", "rate_limit_exceeded", "model_not_found",
                                 "conversation_already_has_active_response",
                                 "response_cancel_not_active"]) | st.text(max_size=12),
        "event_id": st.sampled_from(["truncate_1", "evt_1"]) | st.none()})},
    "input_audio_buffer.speech_started": {"audio_start_ms": _INT, "item_id": _ID},
    "input_audio_buffer.speech_stopped": {"audio_end_ms": _INT, "item_id": _ID},
    "conversation.item.input_audio_transcription.completed": {"item_id": _ID,
                                                              "transcript": st.text(max_size=12)},
    "response.created": {"response": st.fixed_dictionaries({"id": _ID})},
    "response.output_audio.delta": {"response_id": _ID, "item_id": _ID, "content_index": _INT,
                                    "delta": _AUDIO},
    "response.output_audio.done": {"response_id": _ID, "item_id": _ID, "content_index": _INT},
    "response.output_audio_transcript.delta": {"response_id": _ID, "item_id": _ID,
                                               "delta": st.text(max_size=12)},
    "response.output_audio_transcript.done": {"response_id": _ID, "item_id": _ID,
                                              "transcript": st.text(max_size=12)},
    "response.function_call_arguments.done": {
        "response_id": _ID, "item_id": _ID, "call_id": _ID,
        "name": st.sampled_from(["end_call", "transfer_call", "switch_agent", "nope"]),
        "arguments": st.sampled_from(["{}", '{"target": "x"}', "not json", "[]"])},
    "response.done": {"response": st.fixed_dictionaries({"id": _ID}, optional={
        "status": st.sampled_from(["completed", "cancelled", "failed", "incomplete"]),
        "status_details": st.fixed_dictionaries({}, optional={"reason": st.text(max_size=8)}),
        "usage": _USAGE})},
    "conversation.item.truncated": {"item_id": _ID, "audio_end_ms": _INT},
}


# The same fields with every nested value loosened too: any JSON at any depth.
_LOOSE_FORMAT = shaped({"type": st.sampled_from(["audio/pcmu", "audio/pcm", "x"])})
_LOOSE_SIDE = shaped({"format": _LOOSE_FORMAT})
_LOOSE_DETAILS = shaped({"text_tokens": _INT, "audio_tokens": _INT, "cached_tokens": _INT,
                         "cached_tokens_details": shaped({"text_tokens": _INT,
                                                          "audio_tokens": _INT})})
LOOSE_FIELDS: dict[str, dict[str, st.SearchStrategy[Any]]] = REALTIME_FIELDS | {
    "session.created": {"session": shaped({"audio": shaped({"input": _LOOSE_SIDE,
                                                            "output": _LOOSE_SIDE})})},
    "session.updated": {"session": shaped({"audio": shaped({"input": _LOOSE_SIDE,
                                                            "output": _LOOSE_SIDE})})},
    "error": {"error": shaped({"type": st.text(max_size=12), "message": st.text(max_size=12),
                               "code": st.sampled_from(["server_error", "model_not_found"]),
                               "event_id": st.sampled_from(["truncate_1", "evt_1"])})},
    "response.created": {"response": shaped({"id": _ID})},
    "response.done": {"response": shaped({
        "id": _ID, "status": st.sampled_from(["completed", "cancelled"]),
        "status_details": shaped({"reason": st.text(max_size=8)}),
        "usage": shaped({"total_tokens": _INT, "input_tokens": _INT, "output_tokens": _INT,
                         "input_token_details": _LOOSE_DETAILS,
                         "output_token_details": _LOOSE_DETAILS})})},
}


def _well_typed(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    fields = REALTIME_FIELDS[kind]
    return st.fixed_dictionaries({"type": st.just(kind)}, optional=fields)


def _any_typed(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    return shaped(LOOSE_FIELDS[kind]).map(lambda fields: {"type": kind} | fields)


WELL_TYPED_EVENTS: st.SearchStrategy[dict[str, Any]] = st.sampled_from(
    sorted(REALTIME_FIELDS)).flatmap(_well_typed)
"""Realtime server events with every field of the type the API documents (any value, or
missing), in any order: what a correct but surprising server could send."""

ANY_TYPED_EVENTS: st.SearchStrategy[dict[str, Any]] = st.sampled_from(
    sorted(REALTIME_FIELDS)).flatmap(_any_typed)
"""Realtime server events whose fields, at any depth, may hold any JSON at all."""

ANY_REALTIME_FRAME: st.SearchStrategy[str | bytes] = st.one_of(
    WELL_TYPED_EVENTS.map(json_text), ANY_TYPED_EVENTS.map(json_text),
    JSON_VALUES.map(json_text), st.text(max_size=60), st.binary(max_size=60),
    st.fixed_dictionaries({"type": st.text(max_size=30)}, optional={"x": JSON_VALUES}).map(
        json_text))
