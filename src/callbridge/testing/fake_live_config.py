"""What a test scripts into the fake GPT-Live server, and what the server records across sessions.

Owns the script types (`LiveReply`, `LiveToolCall`), the server's fixed settings
(`FakeLiveConfig`) and the `LiveRecorder` every session reports to: protocol violations and the
fault switches (`drop_when`, stalls). No I/O. No clock.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from callbridge.testing.fake_realtime_config import Dropped, Recorder, ToolCall

__all__ = ["Dropped", "FakeLiveConfig", "LiveRecorder", "LiveReply", "LiveToolCall"]


# A function call the Responses backend makes: the Realtime fake's `ToolCall` (name, arguments
# sent JSON-encoded, call_id or a fresh "call_…").
LiveToolCall = ToolCall


@dataclass(frozen=True)
class LiveReply:
    """What the model does after one caller turn (replies are used in order, the last repeats).

    A plain reply speaks `text` (`audio`: 8 kHz μ-law, None: `speech.speak(text)`) after
    `delay_ms`. With `delegate` or `tool_calls` the model delegates instead: under Responses
    delegation the backend makes the `tool_calls` (in one response, in parallel) and, once every
    output is in and the client sent `response.create`, answers `text` — `{outputs}` in it is
    replaced by the function outputs joined with "; " — which the model speaks; under client
    delegation the model speaks what the client's `session.commentary.append` for the delegation
    says. `filler` is the automatic acknowledgement: spoken `acknowledgement_delay_ms` after the
    delegation starts unless commentary or thinking was appended meanwhile. `backend_fails`: the
    backend's response ends in `response.failed` (its calls are discarded) and the model speaks
    `text`.
    """

    text: str = "Thanks for calling. How can I help you today?"
    audio: bytes | None = None
    delay_ms: float = 0.0
    tool_calls: tuple[LiveToolCall, ...] = ()
    delegate: bool = False
    filler: str | None = None
    backend_fails: bool = False

    @property
    def delegates(self) -> bool:
        return self.delegate or bool(self.tool_calls) or self.backend_fails


@dataclass(frozen=True)
class FakeLiveConfig:
    """The server's constructor arguments, shared read-only by its sessions."""

    replies: tuple[LiveReply, ...] = ()
    echo: bool = False
    greeting: str | None = None
    speed: float = 1.0
    delta_ms: float = 100.0
    reaction_ms: float = 300.0
    vad_threshold_dbfs: float = -40.0
    vad_start_ms: float = 60.0
    silence_duration_ms: float = 500.0
    barge_in_ms: float = 300.0
    backchannel_after_ms: float | None = None
    input_lead_ms: float = 500.0
    gap_tolerance_ms: float = 60.0
    user_transcripts: tuple[str, ...] | None = None
    usage_interval_s: float = 60.0
    expires_in_s: float = 7200.0
    close_drain_ms: float = 2000.0
    strict: bool = False


@dataclass
class LiveRecorder(Recorder):
    """What every session reports (violations, the one-shot `drop_when` rules of the Realtime
    fake's `Recorder`) plus the stall switch: while `sending` is clear, sessions send nothing."""

    sending: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.sending.set()
