"""OpenAI Realtime (GA interface) events: client events we send, server events we act on.

Client events are frozen dataclasses with `serialize()`; `parse()` turns a server frame into the
matching dataclass, or `Unknown` for the many types the bridge does not act on — never an exception
for an unknown type. `parse()` raises only `RealtimeProtocolError` (not JSON, no `type`, or a known
event missing a field the bridge needs). Only GA names: `response.output_audio.*`,
`response.output_audio_transcript.*`; the retired beta shapes are never produced.
No I/O. No clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from callbridge.core.wire_json import dumps as _dumps
from callbridge.core.wire_json import json_object as _object
from callbridge.core.wire_json import parse_event
from callbridge.core.wire_json import text as _text
from callbridge.errors import RealtimeProtocolError

# ---------------------------------------------------------------- client events (we send)


@dataclass(frozen=True, slots=True)
class SessionUpdate:
    session: dict[str, Any]

    def serialize(self) -> str:
        return _dumps({"type": "session.update", "session": self.session})


@dataclass(frozen=True, slots=True)
class AppendAudio:
    """Caller audio, forwarded as the base64 text Twilio sent (never decoded)."""

    audio: str

    def serialize(self) -> str:
        return '{"type":"input_audio_buffer.append","audio":"' + self.audio + '"}'


@dataclass(frozen=True, slots=True)
class TruncateItem:
    """Cut an assistant item's audio at what the caller heard. `event_id` (prefix
    `TRUNCATE_EVENT_PREFIX`) lets a rejection be recognised in the `error` that answers it."""

    item_id: str
    content_index: int
    audio_end_ms: int
    event_id: str = ""

    def serialize(self) -> str:
        payload: dict[str, Any] = {
            "type": "conversation.item.truncate",
            "item_id": self.item_id,
            "content_index": self.content_index,
            "audio_end_ms": self.audio_end_ms,
        }
        if self.event_id:
            payload["event_id"] = self.event_id
        return _dumps(payload)


TRUNCATE_EVENT_PREFIX = "truncate_"


@dataclass(frozen=True, slots=True)
class CreateResponse:
    response: dict[str, Any] | None = None

    def serialize(self) -> str:
        if self.response is None:
            return '{"type":"response.create"}'
        return _dumps({"type": "response.create", "response": self.response})


@dataclass(frozen=True, slots=True)
class CancelResponse:
    response_id: str | None = None

    def serialize(self) -> str:
        if self.response_id is None:
            return '{"type":"response.cancel"}'
        return _dumps({"type": "response.cancel", "response_id": self.response_id})


@dataclass(frozen=True, slots=True)
class CreateItem:
    item: dict[str, Any]

    def serialize(self) -> str:
        return _dumps({"type": "conversation.item.create", "item": self.item})


ClientEvent = (
    SessionUpdate | AppendAudio | TruncateItem | CreateResponse | CancelResponse | CreateItem
)


# ---------------------------------------------------------------- server events (we receive)


@dataclass(frozen=True, slots=True)
class SessionCreated:
    session: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SessionUpdated:
    session: dict[str, Any]

    def audio_format(self, direction: str) -> str | None:
        """The effective `audio.<direction>.format.type`, e.g. "audio/pcmu"."""
        audio = self.session.get("audio")
        side = audio.get(direction) if isinstance(audio, dict) else None
        fmt = side.get("format") if isinstance(side, dict) else None
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        return kind if isinstance(kind, str) else None


@dataclass(frozen=True, slots=True)
class ServerError:
    type: str
    code: str | None
    message: str
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    audio_start_ms: int
    item_id: str


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    audio_end_ms: int
    item_id: str


@dataclass(frozen=True, slots=True)
class ResponseCreated:
    response_id: str


@dataclass(frozen=True, slots=True)
class AudioDelta:
    response_id: str
    item_id: str
    content_index: int
    delta: str  # base64 audio in the session's output format


@dataclass(frozen=True, slots=True)
class AudioDone:
    response_id: str
    item_id: str
    content_index: int


@dataclass(frozen=True, slots=True)
class TranscriptDelta:
    response_id: str
    item_id: str
    delta: str


@dataclass(frozen=True, slots=True)
class TranscriptDone:
    response_id: str
    item_id: str
    transcript: str


@dataclass(frozen=True, slots=True)
class InputTranscription:
    item_id: str
    transcript: str


@dataclass(frozen=True, slots=True)
class FunctionCallDone:
    response_id: str
    item_id: str
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ResponseDone:
    response_id: str
    status: str
    reason: str | None
    usage: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ItemTruncated:
    item_id: str
    audio_end_ms: int


@dataclass(frozen=True, slots=True)
class Unknown:
    """A server event the bridge does not act on, kept whole for logs and tests."""

    type: str
    data: dict[str, Any]


ServerEvent = (
    SessionCreated | SessionUpdated | ServerError | SpeechStarted | SpeechStopped
    | ResponseCreated | AudioDelta | AudioDone | TranscriptDelta | TranscriptDone
    | InputTranscription | FunctionCallDone | ResponseDone | ItemTruncated | Unknown
)


def parse(text: str | bytes) -> ServerEvent:
    """Parse one server frame. Raises `RealtimeProtocolError`; unknown types become `Unknown`."""
    return parse_event(text, _BUILDERS, Unknown, RealtimeProtocolError)



def _error(e: dict[str, Any]) -> ServerError:
    err = _object(e.get("error") or {})
    code, event_id = err.get("code"), err.get("event_id")
    return ServerError(
        type=str(err.get("type", "")),
        code=code if isinstance(code, str) else None,
        message=str(err.get("message", "")),
        event_id=event_id if isinstance(event_id, str) else None,
    )


def _response_done(e: dict[str, Any]) -> ResponseDone:
    response = _object(e["response"])
    details = response.get("status_details")
    reason = details.get("reason") if isinstance(details, dict) else None
    usage = response.get("usage")
    return ResponseDone(
        response_id=_text(response["id"]),
        status=_text(response.get("status", "completed")),
        reason=reason if isinstance(reason, str) else None,
        usage=usage if isinstance(usage, dict) else {},
    )



def _optional_text(value: object) -> str:
    """A text field the server may leave out or null: "" then."""
    return "" if value is None else _text(value)


# Every id and text the session keys on or joins is checked to be a string here, so a wrongly
# typed field is a protocol error (counted, dropped), never an exception inside the session.
_BUILDERS: dict[str, Callable[[dict[str, Any]], ServerEvent]] = {
    "response.output_audio.delta": lambda e: AudioDelta(
        _text(e["response_id"]), _text(e["item_id"]), int(e.get("content_index", 0)),
        _text(e["delta"]),
    ),
    "response.output_audio.done": lambda e: AudioDone(
        _text(e["response_id"]), _text(e["item_id"]), int(e.get("content_index", 0))
    ),
    "response.output_audio_transcript.delta": lambda e: TranscriptDelta(
        _text(e["response_id"]), _text(e["item_id"]), _text(e["delta"])
    ),
    "response.output_audio_transcript.done": lambda e: TranscriptDone(
        _text(e["response_id"]), _text(e["item_id"]), _optional_text(e.get("transcript"))
    ),
    "input_audio_buffer.speech_started": lambda e: SpeechStarted(
        int(e.get("audio_start_ms", 0)), _text(e["item_id"])
    ),
    "input_audio_buffer.speech_stopped": lambda e: SpeechStopped(
        int(e.get("audio_end_ms", 0)), _text(e["item_id"])
    ),
    "response.created": lambda e: ResponseCreated(_text(_object(e["response"])["id"])),
    "response.done": _response_done,
    "response.function_call_arguments.done": lambda e: FunctionCallDone(
        _optional_text(e.get("response_id")), _optional_text(e.get("item_id")),
        _text(e["call_id"]), _text(e["name"]), _text(e["arguments"]),
    ),
    "conversation.item.input_audio_transcription.completed": lambda e: InputTranscription(
        _text(e["item_id"]), _optional_text(e.get("transcript"))
    ),
    "conversation.item.truncated": lambda e: ItemTruncated(
        _text(e["item_id"]), int(e["audio_end_ms"])
    ),
    "session.created": lambda e: SessionCreated(_object(e["session"])),
    "session.updated": lambda e: SessionUpdated(_object(e["session"])),
    "error": _error,
}
