"""Twilio's rules for the messages a bridge sends on a bidirectional Media Stream.

Owns judging one outbound WebSocket frame against §1.3 of the Twilio reference, the way Twilio's
media server does: text frames only (31950); valid JSON whose `event` is `media`, `mark` or
`clear`, with exactly the documented fields at every level and this stream's `streamSid` (31951); a
payload of standard padded base64 holding raw μ-law, never a WAV file (31924). Each problem string
starts with the Twilio error code it would raise. A payload that is not a whole number of 20 ms
frames is legal but risks jitter, so it is a warning, not a problem.

Independent of `callbridge.core` on purpose: this is the yardstick the bridge is measured against.
Pure: no I/O, no clock, no state.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from callbridge.audio.g711 import FRAME_BYTES

# Fields each outbound event must carry, exactly (no more, no fewer), and its nested object.
_TOP_FIELDS: dict[str, frozenset[str]] = {
    "media": frozenset({"event", "streamSid", "media"}),
    "mark": frozenset({"event", "streamSid", "mark"}),
    "clear": frozenset({"event", "streamSid"}),
}
_NESTED_FIELDS: dict[str, frozenset[str]] = {
    "media": frozenset({"payload"}),
    "mark": frozenset({"name"}),
}


@dataclass(frozen=True, slots=True)
class OutboundCheck:
    """The verdict on one frame, plus what was parsed from it so callers never parse twice.

    `message` is the JSON object when the frame is one (even if it breaks rules); `audio` is the
    decoded `media.payload` when that is valid base64.
    """

    problems: tuple[str, ...]
    warnings: tuple[str, ...]
    message: dict[str, Any] | None = None
    audio: bytes | None = None

    @property
    def ok(self) -> bool:
        """True when Twilio would accept the message."""
        return not self.problems


def check_outbound(frame: str | bytes, stream_sid: str | None) -> list[str]:
    """Problems with one frame a bridge sent to Twilio; empty when Twilio would accept it.

    `stream_sid` is the active stream's SID, or None when `start` has not been sent yet.
    """
    return list(inspect_outbound(frame, stream_sid).problems)


def inspect_outbound(frame: str | bytes, stream_sid: str | None) -> OutboundCheck:
    """Problems and warnings for one frame, with the parsed message and decoded audio."""
    if isinstance(frame, bytes | bytearray | memoryview):
        problem = f"31950 binary frame ({len(frame)} bytes): Twilio accepts JSON text only"
        return OutboundCheck((problem,), ())
    try:
        message = json.loads(frame)
    except ValueError as exc:
        return OutboundCheck((f"31951 invalid JSON: {exc}",), ())
    if not isinstance(message, dict):
        kind = type(message).__name__
        return OutboundCheck((f"31951 message is a JSON {kind}, not an object",), ())
    problems = _event_problems(message)
    if problems:
        return OutboundCheck(tuple(problems), (), message)
    event = message["event"]
    problems = _field_problems(event, message) + _stream_sid_problems(event, message, stream_sid)
    warnings: list[str] = []
    audio = None
    nested = message.get(event)
    if event == "media" and isinstance(nested, dict) and "payload" in nested:
        audio = _check_payload(nested["payload"], problems, warnings)
    elif event == "mark" and isinstance(nested, dict) and "name" in nested:
        name = nested["name"]
        if not isinstance(name, str) or not name:
            problems.append(f"31951 mark.name must be a non-empty string, not {name!r}")
    return OutboundCheck(tuple(problems), tuple(warnings), message, audio)


def _event_problems(message: dict[str, Any]) -> list[str]:
    if "event" not in message:
        return ["31951 missing field 'event'"]
    event = message["event"]
    if not isinstance(event, str) or event not in _TOP_FIELDS:
        return [f"31951 event {event!r} is not one of 'media', 'mark', 'clear'"]
    return []


def _field_problems(event: str, message: dict[str, Any]) -> list[str]:
    problems = _exact_fields(event, message, _TOP_FIELDS[event])
    nested_fields = _NESTED_FIELDS.get(event)
    if nested_fields is not None and event in message:
        nested = message[event]
        if isinstance(nested, dict):
            problems += _exact_fields(f"{event}.{event}", nested, nested_fields)
        else:
            kind = type(nested).__name__
            problems.append(f"31951 {event}: '{event}' must be an object, not {kind}")
    return problems


def _exact_fields(where: str, obj: dict[str, Any], expected: frozenset[str]) -> list[str]:
    missing = sorted(expected - obj.keys())
    extra = sorted(obj.keys() - expected)
    return [f"31951 {where}: missing field {name!r}" for name in missing] + [
        f"31951 {where}: extra field {name!r}" for name in extra
    ]


def _stream_sid_problems(event: str, message: dict[str, Any], stream_sid: str | None) -> list[str]:
    if stream_sid is None:
        return [f"31951 {event} sent before 'start': no streamSid has been issued yet"]
    if "streamSid" in message and message["streamSid"] != stream_sid:
        sent = message["streamSid"]
        return [f"31951 {event}: streamSid {sent!r} is not this stream's {stream_sid!r}"]
    return []


def _check_payload(payload: object, problems: list[str], warnings: list[str]) -> bytes | None:
    if not isinstance(payload, str):
        problems.append(f"31951 media.payload must be a string, not {type(payload).__name__}")
        return None
    try:
        audio = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        problems.append("31924 media.payload is not standard base64 with padding")
        return None
    if not audio:
        problems.append("31924 media.payload is empty")
    elif audio.startswith(b"RIFF"):
        problems.append("31924 media.payload starts with a RIFF/WAV header: send raw μ-law only")
    elif len(audio) % FRAME_BYTES:
        warnings.append(f"media.payload is {len(audio)} bytes, not a multiple of {FRAME_BYTES}")
    return audio
