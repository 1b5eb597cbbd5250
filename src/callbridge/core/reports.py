"""Typed reports: what the session tells the adapters besides the frames to send — everything
an adapter acts on (the answered record, admission control, usage and its cost, metrics) is one
of these classes, never a string to compare.

Each report names its `kind` (the name of the event the call record stores, unchanged from the
string notes these replace, so stored events and the API that reads them keep their shape) and
its `detail()` (the stored event's detail). `Note` stays for what is only logged and stored.
No I/O. No clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class Note:
    """Something worth a log line and a stored event, which no adapter branches on."""

    kind: str
    detail: dict[str, Any] = field(default_factory=dict)

    def details(self) -> dict[str, Any]:
        return self.detail


@dataclass(frozen=True, slots=True)
class StreamStarted:
    """Twilio's `start` arrived: the call is answered (the adapter writes the answered record)."""

    kind: ClassVar[str] = "stream_started"
    stream_sid: str

    def details(self) -> dict[str, Any]:
        return {"stream_sid": self.stream_sid}


@dataclass(frozen=True, slots=True)
class UpstreamLost:
    """The model's socket closed, broke or stalled; `retries` so far."""

    kind: ClassVar[str] = "upstream_lost"
    reason: str
    retries: int

    def details(self) -> dict[str, Any]:
        return {"reason": self.reason, "retries": self.retries}


@dataclass(frozen=True, slots=True)
class UpstreamConnectFailed:
    """Opening the model's socket failed; `retries` so far."""

    kind: ClassVar[str] = "upstream_connect_failed"
    reason: str
    retries: int

    def details(self) -> dict[str, Any]:
        return {"reason": self.reason, "retries": self.retries}


@dataclass(frozen=True, slots=True)
class UpstreamGaveUp:
    """No model session can be had: the call falls back to the apology (admission control
    counts these to stop taking calls while the model is down)."""

    kind: ClassVar[str] = "upstream_gave_up"
    reason: str

    def details(self) -> dict[str, Any]:
        return {"reason": self.reason}


@dataclass(frozen=True, slots=True)
class UpstreamStalled:
    """The model said nothing for `silent_s` while it owed a reply: its socket is replaced."""

    kind: ClassVar[str] = "upstream_stalled"
    silent_s: float

    def details(self) -> dict[str, Any]:
        return {"silent_s": self.silent_s}


@dataclass(frozen=True, slots=True)
class ReplyUsage:
    """A reply finished: its usage and its cost, computed once, here."""

    kind: ClassVar[str] = "response_done"
    response_id: str
    status: str
    reason: str | None
    usage: dict[str, Any]
    cost_usd: float

    def details(self) -> dict[str, Any]:
        return {"response_id": self.response_id, "status": self.status,
                "reason": self.reason, "usage": self.usage}


@dataclass(frozen=True, slots=True)
class TurnLatency:
    """How long the caller waited, in media time: the end of their speech to agent audio
    Twilio confirmed playing; `model_ms` is the model's share (to its first audio)."""

    kind: ClassVar[str] = "turn_latency"
    ms: int
    model_ms: int | None

    def details(self) -> dict[str, Any]:
        return {"ms": self.ms, "model_ms": self.model_ms}


@dataclass(frozen=True, slots=True)
class BargeIn:
    """The caller talked over the agent; `reaction_ms` from their speech starting (media
    time) to the `clear`, when the model's audio clock is known."""

    kind: ClassVar[str] = "barge_in"
    item_id: str
    reaction_ms: int | None = None

    def details(self) -> dict[str, Any]:
        detail: dict[str, Any] = {"item_id": self.item_id}
        if self.reaction_ms is not None:
            detail["reaction_ms"] = self.reaction_ms
        return detail


@dataclass(frozen=True, slots=True)
class MalformedTwilio:
    """A Twilio frame we could not use (reported for the first few, then every hundredth)."""

    kind: ClassVar[str] = "malformed_twilio_frame"
    count: int
    error: str

    def details(self) -> dict[str, Any]:
        return {"count": self.count, "error": self.error}


@dataclass(frozen=True, slots=True)
class MalformedModel:
    """A model event we could not use (reported like `MalformedTwilio`)."""

    kind: ClassVar[str] = "malformed_realtime_event"
    count: int
    error: str

    def details(self) -> dict[str, Any]:
        return {"count": self.count, "error": self.error}


@dataclass(frozen=True, slots=True)
class CostCapReached:
    kind: ClassVar[str] = "cost_cap_reached"
    cost_usd: float

    def details(self) -> dict[str, Any]:
        return {"cost_usd": self.cost_usd}


Report = (
    Note | StreamStarted | UpstreamLost | UpstreamConnectFailed | UpstreamGaveUp
    | UpstreamStalled | ReplyUsage | TurnLatency | BargeIn | MalformedTwilio | MalformedModel
    | CostCapReached
)
REPORTS = (Note, StreamStarted, UpstreamLost, UpstreamConnectFailed, UpstreamGaveUp,
           UpstreamStalled, ReplyUsage, TurnLatency, BargeIn, MalformedTwilio, MalformedModel,
           CostCapReached)

