"""The actions a `CallSession` returns: what the adapters must do, in order.

An adapter carries these out and decides nothing itself; the typed reports it records and
counts are in `reports` (re-exported here). No I/O. No clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from callbridge.core import live_events, realtime_events
from callbridge.core.reports import MalformedModel, MalformedTwilio, Note, Report
from callbridge.core.twilio_messages import Outbound


@dataclass(frozen=True, slots=True)
class SendTwilio:
    """Send one message on the Twilio media socket."""

    message: Outbound


@dataclass(frozen=True, slots=True)
class SendRealtime:
    """Send one client event on the model's socket (named for the first model API; any
    protocol object behind the seam in `model` produces these)."""

    event: realtime_events.ClientEvent | live_events.ClientEvent


@dataclass(frozen=True, slots=True)
class OpenUpstream:
    """Open a new Realtime socket after `delay` seconds.

    Report back with `upstream_opened()` or `upstream_failed()`."""

    attempt: int
    delay: float


@dataclass(frozen=True, slots=True)
class CloseUpstream:
    """Close the model's socket: an open session is billed and counts against rate limits.
    `farewell` events go first, then the adapter waits up to `drain_s` for the server to close
    the socket itself (a session that must be closed gracefully), else closes it at once."""

    reason: str
    farewell: tuple[SendRealtime, ...] = ()
    drain_s: float = 0.0


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


Action = (
    SendTwilio | SendRealtime | OpenUpstream | CloseUpstream | EndStream | RunTool
    | TurnFinished | HangUp | RedirectCall | StartRecording | SaveRecording | Report
)
CallControl = HangUp | RedirectCall | StartRecording
"""What the adapter asks Twilio's REST API to do; a failure goes back to `control_failed()`."""


def sampled(report: type[MalformedTwilio] | type[MalformedModel], count: int,
            exc: Exception) -> list[Action]:
    """A report for the first few occurrences, then every hundredth, so garbage cannot flood
    the logs."""
    if count <= 3 or count % 100 == 0:
        return [report(count, str(exc)[:200])]
    return []


__all__ = [
    "Action", "CallControl", "CloseUpstream", "EndStream", "HangUp", "Note", "OpenUpstream",
    "RedirectCall", "Report", "RunTool", "SaveRecording", "SendRealtime", "SendTwilio",
    "StartRecording", "TurnFinished", "sampled",
]
