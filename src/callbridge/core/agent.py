"""An agent profile — what the agent says and how it listens — and the `session.update` it implies.

Owns the mapping from our settings to the GA Realtime session object. Every session object built
here states both audio formats, because a later `session.update` that omits them is a known cause
of static on the line. No I/O. No clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

TurnDetection = Literal["server_vad", "semantic_vad", "none"]

DEFAULT_INSTRUCTIONS = (
    "You are a friendly, concise phone assistant. Speak naturally, keep answers short, "
    "and ask one question at a time."
)


@dataclass(frozen=True, slots=True)
class AgentProfile:
    """Everything about one agent that shapes the Realtime session and the call."""

    name: str = "default"
    model: str = "gpt-realtime-2.1"
    voice: str = "marin"
    instructions: str = DEFAULT_INSTRUCTIONS
    greeting: str | None = None
    turn_detection: TurnDetection = "server_vad"
    vad_threshold: float = 0.5
    vad_prefix_padding_ms: int = 300
    vad_silence_duration_ms: int = 500
    semantic_vad_eagerness: Literal["low", "medium", "high", "auto"] = "auto"
    interrupt_response: bool = True
    transcription_model: str | None = "gpt-4o-mini-transcribe"
    language: str | None = None
    tools: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def turn_detection_config(self) -> dict[str, Any] | None:
        if self.turn_detection == "none":
            return None
        if self.turn_detection == "semantic_vad":
            return {
                "type": "semantic_vad",
                "eagerness": self.semantic_vad_eagerness,
                "create_response": True,
                "interrupt_response": self.interrupt_response,
            }
        return {
            "type": "server_vad",
            "threshold": self.vad_threshold,
            "prefix_padding_ms": self.vad_prefix_padding_ms,
            "silence_duration_ms": self.vad_silence_duration_ms,
            "create_response": True,
            "interrupt_response": self.interrupt_response,
        }

    def session(self) -> dict[str, Any]:
        """The full `session` object of a `session.update` for this agent (μ-law both ways)."""
        audio_input: dict[str, Any] = {
            "format": {"type": "audio/pcmu"},
            "turn_detection": self.turn_detection_config(),
        }
        if self.transcription_model:
            transcription: dict[str, Any] = {"model": self.transcription_model}
            if self.language:
                transcription["language"] = self.language
            audio_input["transcription"] = transcription
        session: dict[str, Any] = {
            "type": "realtime",
            "model": self.model,
            "output_modalities": ["audio"],
            "instructions": self.instructions,
            "audio": {
                "input": audio_input,
                "output": {"format": {"type": "audio/pcmu"}, "voice": self.voice},
            },
        }
        if self.tools:
            session["tools"] = [dict(tool) for tool in self.tools]
            session["tool_choice"] = "auto"
        return session

    def greeting_response(self) -> dict[str, Any] | None:
        """The `response` of the `response.create` that speaks the greeting, if there is one."""
        if not self.greeting:
            return None
        return {
            "instructions": (
                "Greet the caller. Say exactly: "
                + _quote(self.greeting)
                + " Do not add anything else."
            ),
            "metadata": {"purpose": "greeting"},
        }


def _quote(text: str) -> str:
    return '"' + text.replace('"', "'") + '"'
