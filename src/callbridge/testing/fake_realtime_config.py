"""What a test scripts into the fake Realtime server, and what the server records across calls.

Owns the script types (`Reply`, `ToolCall`), the server's fixed settings (`FakeConfig`) and the
shared `Recorder` that every connection reports to: protocol violations, rejected truncates,
response conflicts, late audio, and the one-shot `drop_when` rules. No I/O. No clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ToolCall:
    """A function call the model makes; `arguments` go on the wire JSON-encoded."""

    name: str
    arguments: dict[str, object]
    call_id: str | None = None  # a fresh "call_…" when None


@dataclass(frozen=True)
class Reply:
    """One scripted model response.

    `audio` is 8 kHz μ-law (None: `callbridge.testing.speech.speak(text)`). With `tool_call` set the
    response is a function call without audio; the next response uses the next reply.
    `delay_ms` is the model latency between `response.created` and the first output.
    """

    text: str = "Thanks for calling. How can I help you today?"
    audio: bytes | None = None
    tool_call: ToolCall | None = None
    delay_ms: float = 0.0


@dataclass(frozen=True)
class FakeConfig:
    """The server's constructor arguments, shared read-only by its connections."""

    replies: tuple[Reply, ...] = ()
    echo: bool = False
    delta_ms: float = 100.0
    speed: float = 8.0
    late_deltas_after_interrupt: int = 2
    vad_threshold_dbfs: float = -40.0
    vad_start_ms: float = 60.0
    silence_duration_ms: float = 500.0
    user_transcripts: tuple[str, ...] | None = None
    session_max_seconds: float | None = None
    strict: bool = False
    latency_ms: float = 0.0  # model latency added to every response, scripted or not


@dataclass
class _DropRule:
    event_type: str
    remaining: int


class Dropped(Exception):
    """Raised inside the server after a connection was aborted on purpose (`drop_when`)."""


@dataclass
class Recorder:
    """Everything the server's connections report, in order of occurrence."""

    violations: list[str] = field(default_factory=list)
    truncate_errors: int = 0
    active_response_conflicts: int = 0
    interrupted_audio: list[bytes] = field(default_factory=list)
    _drop_rules: list[_DropRule] = field(default_factory=list)

    def violation(self, where: str, message: str) -> None:
        self.violations.append(f"{where}: {message}")

    def arm_drop(self, event_type: str, nth: int) -> None:
        if nth < 1:
            raise ValueError(f"nth must be >= 1, got {nth}")
        self._drop_rules.append(_DropRule(event_type, nth))

    def should_drop(self, event_type: str) -> bool:
        """Count one event about to be sent; True (and disarm) when it is the armed nth one."""
        for rule in self._drop_rules:
            if rule.event_type == event_type:
                rule.remaining -= 1
                if rule.remaining == 0:
                    self._drop_rules.remove(rule)
                    return True
        return False
