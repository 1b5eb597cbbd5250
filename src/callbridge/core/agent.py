"""An agent profile — what the agent says, how it listens, what it may do on the call — and the
`session.update` it implies.

Owns the mapping from our settings to the GA Realtime session object. Every session object built
here states both audio formats, because a later `session.update` that omits them is a known cause
of static on the line. Built-in call-control tools (`end_call`, `transfer_call`, `switch_agent`)
are declared here next to the user's own. No I/O. No clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from callbridge.core.audio_path import AudioFormat, session_format
from callbridge.core.comfort import ComfortSound

TurnDetection = Literal["server_vad", "semantic_vad", "none"]
Delegation = Literal["responses", "client"]
DEFAULT_BACKEND_MODEL = "gpt-5.4-mini"

DEFAULT_INSTRUCTIONS = (
    "You are a friendly, concise phone assistant. Speak naturally, keep answers short, "
    "and ask one question at a time."
)


@dataclass(frozen=True, slots=True)
class LiveOptions:
    """The GPT-Live settings of an agent (`live_delegation`, `backend_model`,
    `backend_instructions`, `backend`; see `live_config`)."""

    delegation: Delegation = "responses"
    backend_model: str = DEFAULT_BACKEND_MODEL
    backend_instructions: str | None = None
    backend: str | None = None  # client delegation: the "module:function" that answers
    # The model's own "let me check" waits this long for our commentary before it speaks one.
    acknowledgement_delay_ms: int = 400


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
    audio_format: AudioFormat = "pcmu"  # or "pcm16": μ-law ⇄ PCM16 24 kHz, resampled
    comfort_sound: ComfortSound = "tone"  # during slow tools and reconnects: tone, noise, off
    # tools: the user's (Realtime definitions from the registry) and the built-in ones enabled
    tools: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    tool_fillers: dict[str, str] = field(default_factory=dict)  # tool name → holding line
    filler_after_s: float = 1.0
    builtin_tools: tuple[str, ...] = ()  # of BUILTIN_TOOLS
    transfer_targets: dict[str, str] = field(default_factory=dict)  # name → +E.164 or sip:
    transfer_announcement: str = "Please hold while I transfer your call."
    transfer_fallback: str = "Sorry, nobody could take your call. Please try again later."
    handoffs: tuple[str, ...] = ()  # agents this one may hand the call to
    # runaway controls
    max_call_s: float | None = None
    warn_before_s: float = 60.0
    wrap_up_before_s: float = 20.0
    idle_prompt_s: float | None = None
    idle_hangup_s: float | None = None
    cost_cap_usd: float | None = None
    # keypad, outbound, recording
    dtmf_terminator: str = "#"
    dtmf_pause_s: float = 2.0
    voicemail_message: str | None = None
    record: bool = False  # a dual-channel recording by Twilio
    record_audio: bool = False  # our own as-heard stereo recording (RECORDINGS_DIR)
    # after the call: extra analysis fields (name → JSON Schema fragment) and the webhook
    analysis_fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    live: LiveOptions = field(default_factory=LiveOptions)  # used when the model is gpt-live*

    def turn_detection_config(self, create_response: bool = True) -> dict[str, Any] | None:
        if self.turn_detection == "none":
            return None
        if self.turn_detection == "semantic_vad":
            return {
                "type": "semantic_vad",
                "eagerness": self.semantic_vad_eagerness,
                "create_response": create_response,
                "interrupt_response": self.interrupt_response,
            }
        return {
            "type": "server_vad",
            "threshold": self.vad_threshold,
            "prefix_padding_ms": self.vad_prefix_padding_ms,
            "silence_duration_ms": self.vad_silence_duration_ms,
            "create_response": create_response,
            "interrupt_response": self.interrupt_response,
        }

    def all_tools(self) -> list[dict[str, Any]]:
        """The user's tools plus the enabled built-in ones, as Realtime definitions."""
        tools = [dict(tool) for tool in self.tools]
        return tools + builtin_definitions(self)

    def session(self, *, create_response: bool = True) -> dict[str, Any]:
        """The full `session` object of a `session.update` for this agent (its audio format
        stated both ways).

        `create_response=False` keeps the model quiet until told (an outbound call waiting to
        learn whether a person or a machine answered)."""
        audio_input: dict[str, Any] = {
            "format": session_format(self.audio_format),
            "turn_detection": self.turn_detection_config(create_response),
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
                "output": {"format": session_format(self.audio_format), "voice": self.voice},
            },
        }
        tools = self.all_tools()
        if tools:
            session["tools"] = tools
            session["tool_choice"] = "auto"
        return session

    def greeting_response(self) -> dict[str, Any] | None:
        """The `response` of the `response.create` that speaks the greeting, if there is one."""
        if not self.greeting:
            return None
        return say_exactly(self.greeting, "greeting")


def say_exactly(text: str, purpose: str) -> dict[str, Any]:
    """A `response.create` body that makes the agent say `text` word for word."""
    return {
        "instructions": "Say exactly: " + _quote(text) + " Do not add anything else.",
        "metadata": {"purpose": purpose},
    }


def instructed(instructions: str, purpose: str) -> dict[str, Any]:
    """A `response.create` body with one-off instructions."""
    return {"instructions": instructions, "metadata": {"purpose": purpose}}


def _quote(text: str) -> str:
    return '"' + text.replace('"', "'") + '"'


BUILTIN_TOOLS = ("end_call", "transfer_call")


def builtin_definitions(profile: AgentProfile) -> list[dict[str, Any]]:
    """Realtime definitions of the call-control tools this profile enables."""
    tools: list[dict[str, Any]] = []
    if "end_call" in profile.builtin_tools:
        tools.append({
            "type": "function", "name": "end_call",
            "description": ("End the phone call. Use it when the caller says goodbye or the "
                            "conversation is finished. Say a short goodbye first."),
            "parameters": {"type": "object", "properties": {
                "reason": {"type": "string", "description": "Why the call is ending."}},
                "required": [], "additionalProperties": False},
        })
    if "transfer_call" in profile.builtin_tools and profile.transfer_targets:
        tools.append({
            "type": "function", "name": "transfer_call",
            "description": ("Transfer the caller to a person. Use it when the caller asks for a "
                            "human or you cannot help. Targets: "
                            + ", ".join(sorted(profile.transfer_targets)) + "."),
            "parameters": {"type": "object", "properties": {
                "target": {"type": "string", "enum": sorted(profile.transfer_targets),
                           "description": "Who to transfer to."}},
                "required": ["target"], "additionalProperties": False},
        })
    if profile.handoffs:
        tools.append({
            "type": "function", "name": "switch_agent",
            "description": ("Hand the conversation to another assistant who handles: "
                            + ", ".join(profile.handoffs) + "."),
            "parameters": {"type": "object", "properties": {
                "agent": {"type": "string", "enum": list(profile.handoffs)}},
                "required": ["agent"], "additionalProperties": False},
        })
    return tools
