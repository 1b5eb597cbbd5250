"""Wire shapes of the fake GPT-Live server: ids, the session resource, errors, backend responses.

Owns building the JSON objects GPT-Live puts on the wire (checked against `openai.types.live` and
`openai.types.responses` by the tests) and the startup rules the real server applies beyond the
SDK's types: the model name, the voice, the audio format the fake can play, the size limits of
`input` and of appended context. Plain dicts in and out; no I/O, no clock (callers pass times).
"""

from __future__ import annotations

import copy
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from callbridge.testing.fake_realtime_wire import JsonDict, new_id, split_words, text_tokens

__all__ = [
    "JsonDict",
    "StartupRefused",
    "error_event",
    "new_id",
    "session_resource",
    "split_words",
    "startup_problem",
    "text_tokens",
]

FORBIDDEN_VOICES = frozenset({"fable", "nova", "onyx"})
MAX_INPUT_MESSAGES = 128
MAX_INPUT_TOKENS = 8192
MAX_INSTRUCTIONS_TOKENS = 16_384
MAX_APPEND_TOKENS = 500
PCMU_FORMAT: JsonDict = {"type": "audio/pcmu", "rate": 8000}


class StartupRefused(ValueError):
    """The server refuses a (schema-valid) `session.start`; `code`/`param` go into the error."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code, self.param = code, param


def built_in_voices() -> frozenset[str]:
    from openai.types.live import BuiltInVoice

    return frozenset(typing.get_args(BuiltInVoice))


def startup_problem(session: Mapping[str, Any]) -> StartupRefused | None:
    """Why the server refuses a `session.start` body that matches the SDK's types, or None."""
    model = str(session["model"])
    if not model.startswith("gpt-live"):
        return StartupRefused("invalid_model", f"Model '{model}' is not a Live model.",
                              "session.model")
    audio = session.get("audio") or {}
    fmt = audio.get("format")
    if fmt is not None and fmt["type"] in ("audio/pcmu", "audio/pcma") and fmt["rate"] != 8000:
        return StartupRefused("invalid_value", "G.711 audio must use rate 8000.",
                              "session.audio.format.rate")
    if fmt != PCMU_FORMAT:  # the default (None) is PCM16 at 24 kHz
        return StartupRefused(
            "unsupported_by_fake",
            f"The fake GPT-Live server plays only {PCMU_FORMAT} (what Twilio carries); got {fmt}.",
            "session.audio.format",
        )
    voice = (audio.get("output") or {}).get("voice")
    if isinstance(voice, str):
        if voice in FORBIDDEN_VOICES:
            return StartupRefused("forbidden", f"Voice '{voice}' is not available for Live.",
                                  "session.audio.output.voice")
        if voice not in built_in_voices():
            return StartupRefused("invalid_value", f"Unknown voice '{voice}'.",
                                  "session.audio.output.voice")
    delegation = session.get("delegation")
    if delegation is not None and delegation["type"] == "decisions":
        return StartupRefused("unsupported_by_fake", "The fake does not implement Decisions.",
                              "session.delegation.type")
    if text_tokens(str(session.get("instructions") or "")) > MAX_INSTRUCTIONS_TOKENS:
        return StartupRefused("invalid_value", "Instructions exceed 16,384 tokens.",
                              "session.instructions")
    return _input_problem(session.get("input") or [])


def _input_problem(items: Sequence[Mapping[str, Any]]) -> StartupRefused | None:
    if len(items) > MAX_INPUT_MESSAGES:
        return StartupRefused("invalid_value", f"At most {MAX_INPUT_MESSAGES} input messages.",
                              "session.input")
    tokens = 0
    for index, item in enumerate(items):
        if len(item["content"]) != 1:
            return StartupRefused("invalid_value", "Each input message has exactly one text part.",
                                  f"session.input[{index}].content")
        tokens += text_tokens(item["content"][0]["text"]) + 4
    if tokens > MAX_INPUT_TOKENS:
        return StartupRefused("invalid_value",
                              f"Input renders to {tokens} tokens; the limit is {MAX_INPUT_TOKENS}.",
                              "session.input")
    return None


def session_resource(session_id: str, config: Mapping[str, Any], expires_at: int) -> JsonDict:
    """The resolved `SessionResource` of `session.started`/`updated`/`closed`."""
    audio = copy.deepcopy(dict(config.get("audio") or {}))
    audio.setdefault("output", {})
    audio["output"].setdefault("voice", "marin")
    delegation = copy.deepcopy(config.get("delegation")) or {"type": "client"}
    delegation.setdefault("acknowledgement_delay_ms", 0)
    return {
        "id": session_id,
        "expires_at": expires_at,
        "model": config["model"],
        "status": "active",
        "audio": audio,
        "delegation": delegation,
        "input": copy.deepcopy(list(config.get("input") or [])),
        "instructions": config.get("instructions"),
        "store": bool(config.get("store", False)),
        "triggers": copy.deepcopy(list(config.get("triggers") or [])),
    }


def error_event(
    code: str,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    client_event_id: str | None = None,
) -> JsonDict:
    error: JsonDict = {"type": type_, "code": code, "message": message}
    if param is not None:
        error["param"] = param
    event: JsonDict = {"type": "error", "error": error}
    if client_event_id is not None:
        error["client_event_id"] = client_event_id
        event["client_event_id"] = client_event_id
    return event


# ---- the Responses backend, as wrapped in `response.event` ------------------------------------


def backend_response(
    response_id: str,
    *,
    model: str,
    status: str,
    created_at: int,
    usage: JsonDict | None = None,
    error: JsonDict | None = None,
) -> JsonDict:
    """A lifecycle snapshot: output, instructions and tools are cleared, as GPT-Live sends them."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "model": model,
        "status": status,
        "output": [],
        "instructions": None,
        "tools": [],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "error": error,
        "incomplete_details": None,
        "metadata": {},
        "usage": usage,
    }


def backend_usage(input_tokens: int, output_tokens: int, reasoning_tokens: int = 0) -> JsonDict:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": input_tokens + output_tokens,
    }


def reasoning_item() -> JsonDict:
    return {"id": new_id("rs"), "type": "reasoning", "summary": []}


def function_call_item(call_id: str, name: str, arguments: str) -> JsonDict:
    return {
        "id": new_id("fc"),
        "type": "function_call",
        "status": "completed",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def message_item(text: str) -> JsonDict:
    return {
        "id": new_id("msg"),
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }
