"""Twilio Media Streams messages as frozen dataclasses.

`parse()` reads what Twilio sends; each outbound message's `serialize()` writes what we send.

Inbound: connected, start, media, dtmf, mark, stop. Outbound: media, mark, clear, with exactly the
fields Twilio accepts (an extra field earns warning 31951). `parse()` raises only
`TwilioProtocolError`. Numeric-looking fields arrive as strings and are converted here.
No I/O. No clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from callbridge.errors import TwilioProtocolError


@dataclass(frozen=True, slots=True)
class Connected:
    protocol: str
    version: str


@dataclass(frozen=True, slots=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    encoding: str
    sample_rate: int
    channels: int
    custom_parameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Media:
    """Caller audio: `payload` stays base64 because the bridge forwards it without decoding."""

    track: str
    chunk: int
    timestamp: int
    payload: str


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str
    track: str = "inbound_track"


@dataclass(frozen=True, slots=True)
class MarkEcho:
    """Twilio's echo of a mark we sent: the audio queued before it has played (or was cleared)."""

    name: str


@dataclass(frozen=True, slots=True)
class Stop:
    call_sid: str
    account_sid: str


Inbound = Connected | Start | Media | Dtmf | MarkEcho | Stop


def parse(text: str | bytes) -> Inbound:
    """Parse one text frame from Twilio. Raises `TwilioProtocolError` for anything unusable."""
    try:
        message = orjson.loads(text)
    except (ValueError, TypeError, RecursionError) as exc:
        raise TwilioProtocolError(f"frame is not JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise TwilioProtocolError("frame is not a JSON object")
    event = message.get("event")
    try:
        if event == "media":
            media = message["media"]
            return Media(
                track=media.get("track", "inbound"),
                chunk=int(media.get("chunk", 0)),
                timestamp=int(media["timestamp"]),
                payload=_text(media["payload"]),
            )
        if event == "mark":
            return MarkEcho(name=_text(message["mark"]["name"]))
        if event == "start":
            return _parse_start(message["start"])
        if event == "dtmf":
            dtmf = message["dtmf"]
            return Dtmf(digit=_text(dtmf["digit"]), track=dtmf.get("track", "inbound_track"))
        if event == "stop":
            stop = message.get("stop") or {}
            return Stop(call_sid=stop.get("callSid", ""), account_sid=stop.get("accountSid", ""))
        if event == "connected":
            return Connected(
                protocol=message.get("protocol", ""), version=message.get("version", "")
            )
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise TwilioProtocolError(f"{event} frame is malformed: {exc!r}") from exc
    raise TwilioProtocolError(f"unknown event {event!r}")


def _parse_start(start: dict[str, Any]) -> Start:
    media_format = start.get("mediaFormat") or {}
    params = start.get("customParameters")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise TypeError("customParameters is not an object")
    return Start(
        stream_sid=_text(start["streamSid"]),
        call_sid=_text(start["callSid"]),
        account_sid=start.get("accountSid", ""),
        tracks=tuple(start.get("tracks") or ("inbound",)),
        encoding=media_format.get("encoding", "audio/x-mulaw"),
        sample_rate=int(media_format.get("sampleRate", 8000)),
        channels=int(media_format.get("channels", 1)),
        custom_parameters={str(k): str(v) for k, v in params.items()},
    )


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


# Outbound messages. Serialized by hand: the shapes are fixed, base64 and SIDs need no escaping,
# and this runs for every chunk of agent audio.


@dataclass(frozen=True, slots=True)
class SendMedia:
    stream_sid: str
    payload: str  # base64 μ-law

    def serialize(self) -> str:
        return (
            '{"event":"media","streamSid":"' + self.stream_sid
            + '","media":{"payload":"' + self.payload + '"}}'
        )


@dataclass(frozen=True, slots=True)
class SendMark:
    stream_sid: str
    name: str

    def serialize(self) -> str:
        return orjson.dumps(
            {"event": "mark", "streamSid": self.stream_sid, "mark": {"name": self.name}}
        ).decode()


@dataclass(frozen=True, slots=True)
class SendClear:
    stream_sid: str

    def serialize(self) -> str:
        return '{"event":"clear","streamSid":"' + self.stream_sid + '"}'


Outbound = SendMedia | SendMark | SendClear
