"""OpenAI GPT-Live events (`/v1/live/sessions`): client events we send, server events we act on.

GPT-Live is a second model API beside Realtime (see ../../../docs/agents.md and the protocol
reference's gpt-live.md): full duplex, no truncate, no reply requests for speech, tools only by
delegation, and a session whose configuration is fixed by its first message, `session.start`.
Client events are frozen dataclasses with `serialize()`; `parse()` turns a server frame into the
matching dataclass, or `Unknown` for the types the bridge does not act on — never an exception
for an unknown type. Backend (Responses) events arrive wrapped in `response.event`; the wrapped
event is parsed here too, into `BackendEvent` with what the bridge needs (a completed function
call, the backend's usage, a failure). `parse()` raises only `LiveProtocolError`.

Two wire rules this module keeps so callers cannot get them wrong: the `*.append` context events
always carry the `delegation_id` key, `null` when there is none (the server requires the key), and
caller audio is forwarded as the base64 text Twilio sent, never decoded.
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
from callbridge.errors import LiveProtocolError

# ---------------------------------------------------------------- client events (we send)


@dataclass(frozen=True, slots=True)
class SessionStart:
    """The first message on a socket: the whole session configuration (`SessionConfig`)."""

    session: dict[str, Any]
    event_id: str = ""

    def serialize(self) -> str:
        return _dumps(_with_id({"type": "session.start", "session": self.session}, self.event_id))


@dataclass(frozen=True, slots=True)
class SessionUpdate:
    """Change delegation settings (never its type) after the start."""

    session: dict[str, Any]
    event_id: str = ""

    def serialize(self) -> str:
        return _dumps(_with_id({"type": "session.update", "session": self.session}, self.event_id))


@dataclass(frozen=True, slots=True)
class SessionClose:
    """Ask the server to finish: it drains and answers `session.closed`."""

    event_id: str = ""

    def serialize(self) -> str:
        return _dumps(_with_id({"type": "session.close"}, self.event_id))


@dataclass(frozen=True, slots=True)
class AppendAudio:
    """Caller audio in the session's format, as the base64 text Twilio sent (never decoded)."""

    audio: str

    def serialize(self) -> str:
        return '{"type":"session.input_audio.append","audio":"' + self.audio + '"}'


@dataclass(frozen=True, slots=True)
class MuteInput:
    """The model hears silence instead of the caller (billing and speech go on)."""

    muted: bool = True

    def serialize(self) -> str:
        kind = "mute" if self.muted else "unmute"
        return '{"type":"session.input_audio.' + kind + '"}'


CONTEXT_CHANNELS = ("instructions", "thinking", "commentary")


@dataclass(frozen=True, slots=True)
class AppendContext:
    """Text added to the session's timeline on one channel: `instructions` (trusted rules),
    `thinking` (silent facts) or `commentary` (what the model should say). `delegation_id` ties
    it to a client delegation; the key is sent even when it is None."""

    channel: str
    content: str
    delegation_id: str | None = None
    event_id: str = ""

    def __post_init__(self) -> None:
        if self.channel not in CONTEXT_CHANNELS:
            raise ValueError(f"context channel must be one of {CONTEXT_CHANNELS}, "
                             f"not {self.channel!r}")

    def serialize(self) -> str:
        return _dumps(_with_id({
            "type": f"session.{self.channel}.append", "content": self.content,
            "delegation_id": self.delegation_id}, self.event_id))


@dataclass(frozen=True, slots=True)
class FunctionCallOutput:
    """A function tool's result for the Responses backend (queued; no acknowledgement)."""

    call_id: str
    output: str
    event_id: str = ""

    def serialize(self) -> str:
        return _dumps(_with_id({"type": "response.item.create", "item": {
            "type": "function_call_output", "call_id": self.call_id, "output": self.output}},
            self.event_id))


@dataclass(frozen=True, slots=True)
class ContinueBackend:
    """Run or continue the Responses backend (only once no function call is open)."""

    event_id: str = ""

    def serialize(self) -> str:
        return _dumps(_with_id({"type": "response.create"}, self.event_id))


ClientEvent = (
    SessionStart | SessionUpdate | SessionClose | AppendAudio | MuteInput | AppendContext
    | FunctionCallOutput | ContinueBackend
)


def _with_id(payload: dict[str, Any], event_id: str) -> dict[str, Any]:
    if event_id:
        payload["event_id"] = event_id
    return payload


# ---------------------------------------------------------------- server events (we receive)


@dataclass(frozen=True, slots=True)
class SessionStarted:
    session_id: str
    expires_at: float | None  # Unix seconds; the session ends then (reason `expired`)
    model: str
    session: dict[str, Any]

    def audio_format(self) -> tuple[str, int] | None:
        """The session's (format type, rate), e.g. ("audio/pcmu", 8000), when the server said."""
        audio = self.session.get("audio")
        fmt = audio.get("format") if isinstance(audio, dict) else None
        if not isinstance(fmt, dict):
            return None
        kind, rate = fmt.get("type"), fmt.get("rate")
        if isinstance(kind, str) and isinstance(rate, int) and not isinstance(rate, bool):
            return kind, rate
        return None


@dataclass(frozen=True, slots=True)
class SessionUpdated:
    session: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SessionClosed:
    reason: str  # close_requested, expired, content, remote_hangup, connection_lost
    seconds: float | None  # the session's final active time


@dataclass(frozen=True, slots=True)
class AudioDelta:
    """Agent audio in the session's format (no item id, no timestamps on the primary socket)."""

    delta: str


@dataclass(frozen=True, slots=True)
class TranscriptDelta:
    """A fragment of what the caller (`input`) or the model (`output`) said, on the session
    timeline in ms (start inclusive, end exclusive)."""

    side: str  # "input" or "output"
    delta: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class DelegationCreated:
    delegation_id: str
    target: str  # client, responses or decisions
    response_id: str | None
    offset_ms: int


@dataclass(frozen=True, slots=True)
class ContextAppended:
    """The server accepted a context append into its timeline (not proof it was spoken)."""

    channel: str
    client_event_id: str | None
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class UsageUpdated:
    seconds: float  # cumulative active seconds: do not sum


@dataclass(frozen=True, slots=True)
class ServerError:
    type: str
    code: str | None
    message: str
    client_event_id: str | None = None


@dataclass(frozen=True, slots=True)
class Info:
    code: str
    message: str


# What a wrapped backend event means to the bridge.
@dataclass(frozen=True, slots=True)
class BackendFunctionCall:
    """A completed function call the backend asks us to run."""

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class BackendCompleted:
    usage: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BackendFailed:
    """`response.failed` or `response.incomplete`: the server discards this response's calls."""

    status: str
    message: str


@dataclass(frozen=True, slots=True)
class BackendOther:
    type: str


BackendDetail = BackendFunctionCall | BackendCompleted | BackendFailed | BackendOther


@dataclass(frozen=True, slots=True)
class BackendEvent:
    """One Responses streaming event from the backend, for the delegation it belongs to."""

    delegation_id: str | None
    detail: BackendDetail


@dataclass(frozen=True, slots=True)
class Unknown:
    """A server event the bridge does not act on, kept whole for logs and tests."""

    type: str
    data: dict[str, Any]


ServerEvent = (
    SessionStarted | SessionUpdated | SessionClosed | AudioDelta | TranscriptDelta
    | DelegationCreated | ContextAppended | UsageUpdated | ServerError | Info | BackendEvent
    | Unknown
)


def parse(text: str | bytes) -> ServerEvent:
    """Parse one server frame. Raises `LiveProtocolError`; unknown types become `Unknown`."""
    return parse_event(text, _BUILDERS, Unknown, LiveProtocolError)



def _optional_text(value: object) -> str | None:
    return None if value is None else _text(value)


def _ms(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number of ms, got {type(value).__name__}")
    return int(value)


def _seconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)



def _session_started(e: dict[str, Any]) -> SessionStarted:
    session = _object(e["session"])
    model = session.get("model")
    return SessionStarted(_text(session["id"]), _seconds(session.get("expires_at")),
                          model if isinstance(model, str) else "", session)


def _session_closed(e: dict[str, Any]) -> SessionClosed:
    usage = e.get("usage")
    seconds = _seconds(usage.get("seconds")) if isinstance(usage, dict) else None
    return SessionClosed(_text(e.get("reason", "")), seconds)


def _usage(e: dict[str, Any]) -> UsageUpdated:
    seconds = _seconds(_object(e["usage"]).get("seconds"))
    if seconds is None:
        raise TypeError("usage.seconds is not a number")
    return UsageUpdated(seconds)


def _delegation(e: dict[str, Any]) -> DelegationCreated:
    delegation = _object(e["delegation"])
    offset = e.get("offset_ms")
    return DelegationCreated(
        _text(delegation["id"]), _text(delegation.get("target", "client")),
        _optional_text(delegation.get("response_id")),
        _ms(offset) if offset is not None else 0)


def _error(e: dict[str, Any]) -> ServerError:
    err = _object(e.get("error") or {})
    code, client_event_id = err.get("code"), err.get("client_event_id")
    return ServerError(
        type=str(err.get("type", "")),
        code=code if isinstance(code, str) else None,
        message=str(err.get("message", "")),
        client_event_id=client_event_id if isinstance(client_event_id, str) else None,
    )


def _backend(e: dict[str, Any]) -> BackendEvent:
    inner = _object(e["event"])
    return BackendEvent(_optional_text(e.get("delegation_id")), _backend_detail(inner))


def _backend_detail(inner: dict[str, Any]) -> BackendDetail:
    kind = _text(inner["type"])
    if kind == "response.output_item.done":
        item = _object(inner["item"])
        # Only completed calls count; lifecycle snapshots and reasoning items carry no work.
        if item.get("type") == "function_call" and item.get("status", "completed") == "completed":
            return BackendFunctionCall(_text(item["call_id"]), _text(item["name"]),
                                       _text(item.get("arguments", "{}")))
        return BackendOther(kind)
    if kind == "response.completed":
        response = inner.get("response")
        usage = response.get("usage") if isinstance(response, dict) else None
        return BackendCompleted(usage if isinstance(usage, dict) else {})
    if kind in ("response.failed", "response.incomplete"):
        response = inner.get("response")
        error = response.get("error") if isinstance(response, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        return BackendFailed(kind.removeprefix("response."),
                             message if isinstance(message, str) else "")
    return BackendOther(kind)


def _transcript(side: str) -> Callable[[dict[str, Any]], ServerEvent]:
    return lambda e: TranscriptDelta(side, _text(e["delta"]), _ms(e["start_ms"]),
                                     _ms(e["end_ms"]))


def _appended(channel: str) -> Callable[[dict[str, Any]], ServerEvent]:
    return lambda e: ContextAppended(channel, _optional_text(e.get("client_event_id")),
                                     _ms(e.get("start_ms", 0)), _ms(e.get("end_ms", 0)))


# Every id and text the session keys on or joins is checked to be a string here, so a wrongly
# typed field is a protocol error (counted, dropped), never an exception inside the session.
_BUILDERS: dict[str, Callable[[dict[str, Any]], ServerEvent]] = {
    "session.output_audio.delta": lambda e: AudioDelta(_text(e["delta"])),
    "session.input_transcript.delta": _transcript("input"),
    "session.output_transcript.delta": _transcript("output"),
    "session.started": _session_started,
    "session.updated": lambda e: SessionUpdated(_object(e["session"])),
    "session.closed": _session_closed,
    "session.usage.updated": _usage,
    "session.delegation.created": _delegation,
    "session.instructions.appended": _appended("instructions"),
    "session.thinking.appended": _appended("thinking"),
    "session.commentary.appended": _appended("commentary"),
    "response.event": _backend,
    "error": _error,
    "info": lambda e: Info(_text(e.get("code", "")), _text(e.get("message", ""))),
}
