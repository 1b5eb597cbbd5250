"""Wire shapes of the fake Realtime server: ids, the session object, items, responses, usage.

Owns building the JSON objects the GA API puts on the wire (checked against the SDK's types by the
tests) and the session rules: which fields deep-merge on `session.update`, turn-detection defaults,
and the greeting convention `Say exactly: "…"` in response instructions. Plain dicts in and out;
no I/O, no clock (callers pass `expires_at`).
"""

from __future__ import annotations

import copy
import itertools
import re
import secrets
from collections.abc import Mapping
from typing import Any

JsonDict = dict[str, Any]

BETA_SESSION_FIELDS = frozenset(
    {
        "input_audio_format",
        "output_audio_format",
        "voice",
        "turn_detection",
        "modalities",
        "input_audio_transcription",
        "input_audio_noise_reduction",
        "max_response_output_tokens",
        "temperature",
    }
)
# Session containers that merge key by key; every other field is replaced as a whole.
_MERGED = frozenset({"audio", "input", "output"})
_SAY_EXACTLY = re.compile(r"""Say exactly\s*:?\s*(?:"([^"]*)"|'([^']*)'|“([^”]*)”)""")


def new_id(prefix: str) -> str:
    """A fresh id such as `item_5f0c…`, in the style of the real API."""
    return f"{prefix}_{secrets.token_hex(10)}"


def server_vad(silence_duration_ms: float = 500) -> JsonDict:
    return {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": int(silence_duration_ms),
        "idle_timeout_ms": None,
        "create_response": True,
        "interrupt_response": True,
    }


def semantic_vad() -> JsonDict:
    return {
        "type": "semantic_vad",
        "eagerness": "auto",
        "create_response": True,
        "interrupt_response": True,
    }


def default_session(
    *, model: str, expires_at: int, silence_duration_ms: float, session_id: str | None = None
) -> JsonDict:
    """The session as `session.created` reports it: PCM 24 kHz both ways, server VAD."""
    pcm = {"type": "audio/pcm", "rate": 24000}
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id or new_id("sess"),
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": expires_at,
        "audio": {
            "input": {
                "format": dict(pcm),
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": server_vad(silence_duration_ms),
            },
            "output": {"format": dict(pcm), "voice": "marin", "speed": 1.0},
        },
        "include": None,
    }


def merge_session(
    current: Mapping[str, Any], update: Mapping[str, Any], *, silence_ms: float
) -> JsonDict:
    """Apply a `session.update` body.

    Containers (`audio`, `input`, `output`) merge key by key; other fields are replaced whole;
    a new `turn_detection` object is completed with the defaults of its type.
    """
    merged = copy.deepcopy(dict(current))
    _merge_into(merged, update)
    audio_in = merged.get("audio", {}).get("input", {})
    detection = audio_in.get("turn_detection")
    if isinstance(detection, dict) and "turn_detection" in update.get("audio", {}).get("input", {}):
        base = semantic_vad() if detection.get("type") == "semantic_vad" else server_vad(silence_ms)
        audio_in["turn_detection"] = {**base, **detection}
    return merged


def _merge_into(target: JsonDict, update: Mapping[str, Any]) -> None:
    for key, value in update.items():
        if key in _MERGED and isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge_into(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def session_update_problem(
    session: Mapping[str, Any], update: Mapping[str, Any], *, audio_produced: bool
) -> tuple[str, str, str] | None:
    """Why the server refuses a (schema-valid) `session.update`: (code, message, param), or None."""
    if update.get("type") != "realtime":
        return "invalid_value", "The fake supports only session.type 'realtime'.", "session.type"
    if update.get("model") not in (None, session["model"]):
        return "invalid_value", "The model of a session cannot be changed.", "session.model"
    audio = update.get("audio") or {}
    voice = (audio.get("output") or {}).get("voice")
    if audio_produced and voice not in (None, session["audio"]["output"]["voice"]):
        message = "Cannot update a conversation's voice if assistant audio is present."
        return "invalid_value", message, "session.audio.output.voice"
    for direction in ("input", "output"):
        fmt = (audio.get(direction) or {}).get("format")
        param = f"session.audio.{direction}.format"
        if fmt is None:
            continue
        if fmt.get("type") not in ("audio/pcmu", "audio/pcm"):
            return "invalid_value", f"The fake supports audio/pcmu and audio/pcm, not {fmt}.", param
        if fmt.get("type") == "audio/pcm" and "rate" not in fmt:
            message = f"Missing required parameter: '{param}.rate'."
            return "missing_required_parameter", message, f"{param}.rate"
    return None


def say_exactly(instructions: object) -> str | None:
    """The quoted text of `Say exactly: "…"` (or '…') in response instructions, if any."""
    if not isinstance(instructions, str):
        return None
    match = _SAY_EXACTLY.search(instructions)
    if match is None:
        return None
    return next(group for group in match.groups() if group is not None)


def _item(item_id: str, kind: str, status: str, **fields: Any) -> JsonDict:
    """A conversation item as the server shows it."""
    return {"id": item_id, "object": "realtime.item", "type": kind, **fields, "status": status}


def user_audio_item(item_id: str) -> JsonDict:
    return _item(item_id, "message", "completed", role="user",
                 content=[{"type": "input_audio", "transcript": None}])


def assistant_item(item_id: str) -> JsonDict:
    return _item(item_id, "message", "in_progress", role="assistant", content=[])


def function_call_item(item_id: str, call_id: str, name: str) -> JsonDict:
    return _item(item_id, "function_call", "in_progress", call_id=call_id, name=name,
                 arguments="")


def public_item(item: Mapping[str, Any]) -> JsonDict:
    """An item as it goes on the wire, without the fake's bookkeeping (`truncated_at_ms`)."""
    return {key: copy.deepcopy(value) for key, value in item.items() if key != "truncated_at_ms"}


def response_object(
    response_id: str,
    *,
    status: str,
    conversation_id: str | None,
    modalities: list[str],
    audio_output: Mapping[str, Any],
    max_output_tokens: object = "inf",
    metadata: Mapping[str, str] | None = None,
) -> JsonDict:
    return {
        "id": response_id,
        "object": "realtime.response",
        "status": status,
        "status_details": None,
        "output": [],
        "conversation_id": conversation_id,
        "output_modalities": modalities,
        "max_output_tokens": max_output_tokens,
        "audio": {"output": dict(audio_output)},
        "usage": None,
        "metadata": dict(metadata) if metadata is not None else None,
    }


def status_details(status: str, reason: str | None) -> JsonDict | None:
    if status == "completed":
        return None
    return {"type": status, "reason": reason}


def usage(
    *,
    input_text: int,
    input_audio: int,
    cached_text: int,
    cached_audio: int,
    output_text: int,
    output_audio: int,
) -> JsonDict:
    """A `response.done` usage object; cached counts are part of the input counts."""
    input_tokens, output_tokens = input_text + input_audio, output_text + output_audio
    return {
        "total_tokens": input_tokens + output_tokens,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "input_token_details": {
            "text_tokens": input_text,
            "audio_tokens": input_audio,
            "image_tokens": 0,
            "cached_tokens": cached_text + cached_audio,
            "cached_tokens_details": {
                "text_tokens": cached_text,
                "audio_tokens": cached_audio,
                "image_tokens": 0,
            },
        },
        "output_token_details": {"text_tokens": output_text, "audio_tokens": output_audio},
    }


def text_tokens(text: str) -> int:
    """Rough token count of `text` (4 characters per token, at least 1 for non-empty text)."""
    return (len(text) + 3) // 4


def rate_limits(input_tokens: int) -> JsonDict:
    return {
        "type": "rate_limits.updated",
        "rate_limits": [
            {"name": "requests", "limit": 20_000, "remaining": 19_999, "reset_seconds": 0.003},
            {
                "name": "tokens",
                "limit": 15_000_000,
                "remaining": 15_000_000 - input_tokens - 4096,
                "reset_seconds": 0.02,
            },
        ],
    }


def error_event(
    code: str | None,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    client_event_id: str | None = None,
) -> JsonDict:
    return {
        "type": "error",
        "error": {
            "type": type_,
            "code": code,
            "message": message,
            "param": param,
            "event_id": client_event_id,
        },
    }


def split_words(text: str, parts: int) -> list[str]:
    """Spread the words of `text` over `parts` deltas whose concatenation is the normalized text."""
    words = text.split()
    bounds = [index * len(words) // parts for index in range(parts + 1)] if parts > 0 else [0]
    return [
        ("" if start == 0 or start == stop else " ") + " ".join(words[start:stop])
        for start, stop in itertools.pairwise(bounds)
    ]
