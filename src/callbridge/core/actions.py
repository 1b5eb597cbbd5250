"""The actions a `CallSession` returns: what the adapters must do, in order.

An adapter carries these out and decides nothing itself. No I/O. No clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from callbridge.core.realtime_events import ClientEvent
from callbridge.core.twilio_messages import Outbound


@dataclass(frozen=True, slots=True)
class SendTwilio:
    """Send one message on the Twilio media socket."""

    message: Outbound


@dataclass(frozen=True, slots=True)
class SendRealtime:
    """Send one client event on the OpenAI Realtime socket."""

    event: ClientEvent


@dataclass(frozen=True, slots=True)
class OpenUpstream:
    """Open a new Realtime socket after `delay` seconds.

    Report back with `upstream_opened()` or `upstream_failed()`."""

    attempt: int
    delay: float


@dataclass(frozen=True, slots=True)
class CloseUpstream:
    """Close the Realtime socket now: an open session is billed and counts against rate limits."""

    reason: str


@dataclass(frozen=True, slots=True)
class EndStream:
    """Close the Twilio media socket; Twilio goes on with the TwiML after `</Connect>`."""

    reason: str


@dataclass(frozen=True, slots=True)
class HangUp:
    """End the call through Twilio's REST API (the caller has heard everything first)."""

    reason: str


@dataclass(frozen=True, slots=True)
class RedirectCall:
    """Replace the call's TwiML through Twilio's REST API (a transfer); the stream then ends."""

    twiml: str
    reason: str


@dataclass(frozen=True, slots=True)
class StartRecording:
    """Start a dual-channel recording of the live call through Twilio's REST API."""


@dataclass(frozen=True, slots=True)
class SaveRecording:
    """Write the as-heard recording: the caller and the agent, 8 kHz μ-law on the media clock."""

    caller: bytes
    agent: bytes


@dataclass(frozen=True, slots=True)
class RunTool:
    """Run a tool and report back with `tool_result()`."""

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class TurnFinished:
    """A finished turn of the transcript; for the agent, `heard` is what the caller heard.

    `started` is when the caller began speaking or the agent's first audio went to Twilio;
    `at` is when the turn ended (transcript arrived, playback confirmed, or interrupted)."""

    role: str  # "caller" | "agent"
    text: str
    heard: str
    interrupted: bool
    item_id: str
    at: float
    started: float


@dataclass(frozen=True, slots=True)
class Note:
    """Something worth a log line or a metric: reconnects, protocol errors, DTMF, latency."""

    kind: str
    detail: dict[str, Any] = field(default_factory=dict)


Action = (
    SendTwilio | SendRealtime | OpenUpstream | CloseUpstream | EndStream | RunTool
    | TurnFinished | Note | HangUp | RedirectCall | StartRecording | SaveRecording
)
