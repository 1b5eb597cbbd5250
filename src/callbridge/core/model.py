"""The seam between a call and the model API on the other end.

The session never reads or writes a model API's wire events. One protocol object per API (see
`realtime_model.RealtimeModel`) turns the API's server events into the model-neutral inputs
below, and the session's intents (append caller audio, cut an item at what was heard, stop a
reply, ask for a reply, give a tool result, restore the conversation, reconfigure) into the
API's client events. Barge-in, pacing, playback, as-heard transcripts, tools, timers and records
see only this module. An API without an intent (GPT-Live cannot cut or cancel speech) answers
it with no events; an API without an input (no speech-started event) never produces it.
No I/O. No clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from callbridge.core.actions import SendRealtime
from callbridge.core.agent import AgentProfile
from callbridge.core.history import ConversationHistory

# ---------------------------------------------------------------- inputs (model → session)


@dataclass(frozen=True, slots=True)
class SessionOpened:
    """The model's session exists: the session sends its configuration."""


@dataclass(frozen=True, slots=True)
class Configured:
    """The model confirmed a configuration; `accepted` is False when it changed the audio
    format we need (`detail` says what it chose). `expires_at`: the Unix time the model's
    session ends by itself, when its API says (GPT-Live's `expires_at`)."""

    accepted: bool
    detail: dict[str, Any] = field(default_factory=dict)
    expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class ReplyStarted:
    reply_id: str


@dataclass(frozen=True, slots=True)
class AgentAudio:
    """Agent audio for one item, base64 in the session's audio format."""

    reply_id: str
    item_id: str
    part: int
    payload: str


@dataclass(frozen=True, slots=True)
class AgentAudioPaused:
    """The model's audio for an item paused (no delta for a moment) while the item goes on:
    what it sent so far should play now, its last partial frame included."""

    reply_id: str
    item_id: str


@dataclass(frozen=True, slots=True)
class AgentAudioDone:
    """The model sent all of an item's audio. `talked_over`: it stopped early because the
    caller talked over it (an API whose model stops by itself, with nothing to truncate)."""

    reply_id: str
    item_id: str
    talked_over: bool = False


@dataclass(frozen=True, slots=True)
class AgentText:
    """More of the transcript of what the agent says in an item."""

    reply_id: str
    item_id: str
    text: str


@dataclass(frozen=True, slots=True)
class AgentTextDone:
    reply_id: str
    item_id: str
    text: str


@dataclass(frozen=True, slots=True)
class CallerSpeechStarted:
    item_id: str
    audio_start_ms: int  # on the model's input clock


@dataclass(frozen=True, slots=True)
class CallerSpeechStopped:
    """The caller's turn ended (at `audio_end_ms` on the model's input clock). `owes_reply`:
    the model answers every turn (Realtime's VAD), so one is now owed; a full-duplex model
    decides by itself whether to speak, and nothing is owed."""

    item_id: str
    audio_end_ms: int
    owes_reply: bool = True


@dataclass(frozen=True, slots=True)
class CallerTranscript:
    """What the caller said in a turn. `started_at`: when they began it, on the session's
    clock, for an API that dates turns only by their words (GPT-Live); otherwise the turn's
    `CallerSpeechStarted` says."""

    item_id: str
    text: str
    started_at: float | None = None


@dataclass(frozen=True, slots=True)
class ToolCallRequested:
    reply_id: str
    call_id: str
    name: str
    arguments: str  # JSON text


@dataclass(frozen=True, slots=True)
class ReplyDone:
    reply_id: str
    status: str
    reason: str | None
    usage: dict[str, Any]


@dataclass(frozen=True, slots=True)
class UsageReported:
    """Usage billed outside a reply (GPT-Live: active seconds, the backend's tokens)."""

    usage: dict[str, Any]
    source: str


class ErrorKind(Enum):
    HARMLESS = "harmless"  # e.g. cancelling a reply that had already finished
    CONFLICT = "conflict"  # a reply was asked for while one is under way
    CUT_REFUSED = "cut_refused"  # a cut at what was heard was rejected
    FATAL = "fatal"  # no use retrying: wrong model, key, quota
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class ModelError:
    kind: ErrorKind
    detail: dict[str, Any]  # type, code, message as the API gave them


ModelInput = (
    SessionOpened | Configured | ReplyStarted | AgentAudio | AgentAudioPaused | AgentAudioDone
    | AgentText
    | AgentTextDone | CallerSpeechStarted | CallerSpeechStopped | CallerTranscript
    | ToolCallRequested | ReplyDone | UsageReported | ModelError
)

# ---------------------------------------------------------------- intents (session → model)


class ModelProtocol(Protocol):
    """One model API's wire protocol. Each intent returns the client events to send, in order.

    A reply `body` is `{"instructions": ..., "metadata": {"purpose": ...}}` (see
    `agent.say_exactly`, `agent.instructed`) or None for the agent's own next turn.
    Time comes in where an API needs it (`receive`, `tick`, `finish`): a full-duplex API infers
    its turns from it."""

    def socket_opened(self) -> Sequence[ModelInput]:
        """A new socket is open: what that means before any server event (an API whose client
        speaks first answers `SessionOpened` at once; others wait for the server's)."""
        ...

    def receive(self, text: str | bytes, now: float) -> Sequence[ModelInput]:
        """One server event: the inputs it means, in order (none for events the call does not
        act on). Raises only `ProtocolError`."""
        ...

    def configure(self, profile: AgentProfile, *, answer_turns: bool,
                  history: ConversationHistory | None = None) -> list[SendRealtime]:
        """Configure (or reconfigure) the session for `profile`; `answer_turns=False` keeps
        the model from answering the caller until told. `history` is given when the session
        replaces one (an API that can take it only at the start carries it there)."""
        ...

    def needs_new_session(self, old: AgentProfile, new: AgentProfile, spoke: bool) -> bool:
        """Whether switching from `old` to `new` needs a fresh session (e.g. a new voice)."""
        ...

    def append_audio(self, audio: str) -> SendRealtime:
        """Caller audio (base64, the session's format)."""
        ...

    def cut(self, item_id: str, part: int, heard_ms: int, seq: int) -> list[SendRealtime]:
        """The caller heard only `heard_ms` of an item: forget the rest."""
        ...

    def stop_reply(self, reply_id: str, profile: AgentProfile) -> list[SendRealtime]:
        """The caller talked over a reply: stop it, unless the API stops it by itself."""
        ...

    def ask_reply(self, body: dict[str, Any] | None) -> list[SendRealtime]:
        """Make the agent speak (its own next turn, or one-off instructions)."""
        ...

    def tool_output(self, call_id: str, output: str) -> SendRealtime:
        ...

    def caller_text(self, text: str) -> SendRealtime:
        """Something the caller said other than by voice (keypad digits)."""
        ...

    def system_note(self, text: str) -> SendRealtime:
        """Information for the model that is not a turn of the conversation."""
        ...

    def restore(self, history: ConversationHistory, max_items: int,
                max_chars: int) -> list[SendRealtime]:
        """Seed a replacing session with the conversation so far."""
        ...

    def cost(self, profile: AgentProfile, usage: dict[str, Any]) -> float:
        """The cost in USD of a reply's (or a `UsageReported`'s) usage."""
        ...

    @property
    def next_tick(self) -> float | None:
        """When `tick` has work if nothing else happens first (None: never)."""
        ...

    def tick(self, now: float) -> tuple[list[ModelInput], list[SendRealtime]]:
        """Time passed: inputs it implies (turns that ended) and events to send (e.g. input
        that must keep flowing)."""
        ...

    def farewell(self) -> tuple[list[SendRealtime], float]:
        """Before the socket is closed at the end of a call: events to send, and how long to
        wait for the server to close it after them (0: close at once)."""
        ...

    def finish(self, now: float) -> Sequence[ModelInput]:
        """The call ended: the last inputs it implies (usage not yet reported)."""
        ...
