"""OpenAI GPT-Live behind the model seam (`model.ModelProtocol`): its events as model-neutral
inputs, the session's intents as its client events.

GPT-Live is full duplex and has no turn events, so the turns the rest of the call works with are
inferred here, from time (`now` comes in with every event and tick):
- an agent reply begins with the first voiced audio or words after a quiet spell and ends when
  the model has been quiet for `gap_s` (no voiced audio, no new words); its audio is one item;
  pure μ-law silence outside a reply is dropped, never forwarded;
- a caller turn is the caller's transcript fragments until `gap_s` of quiet, or until the agent
  starts a reply (which answers it): it ends with `CallerSpeechStopped` (turn latency is measured
  from its end, on the session timeline) that owes no reply — the model decides whether to speak.
  A caller fragment while the agent talks (a backchannel) becomes a transcript only;
- there is no speech-started input: the model stops by itself when talked over, so nothing here
  ever triggers a `clear` or a cut (`cut` and `stop_reply` send nothing).

Asking for speech is `session.commentary.append` (the greeting, holding lines, one-off lines);
after tool results it is one `response.create` for the Responses backend, and only once every
function call of the session has its output (the server refuses it before). Tool calls arrive
inside `response.event`; each `call_id` runs once. A session's configuration is fixed by
`session.start`, so a replacing session carries the conversation in its `input`, a change of
agent always needs a fresh session, and holding the model quiet until an answering-machine verdict
is `mute`. Caller audio must flow continuously: `tick` sends μ-law silence in real time when the
caller's frames stall. Usage is active seconds (cumulative in `session.usage.updated`) plus the
backend's tokens, reported as they come and topped up at the end by `finish`.
No I/O. No clock.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from callbridge.core import live_events as live
from callbridge.core import model as m
from callbridge.core.actions import SendRealtime
from callbridge.core.agent import AgentProfile
from callbridge.core.history import ConversationHistory
from callbridge.core.live_config import (
    LiveOptions,
    backend_tool_name,
    keypad_note,
    session_config,
)
from callbridge.core.live_silence import SILENCE_FRAME, InputClock
from callbridge.core.pricing import backend_cost, live_active_cost

FATAL_ERROR_CODES = frozenset({
    "invalid_api_key", "insufficient_quota", "account_deactivated", "billing_hard_limit_reached",
    "invalid_model", "model_not_found", "forbidden",
})
CONFLICT_CODES = frozenset({"function_call_outputs_required"})
# No audio delta for this long in a reply: a pause (deltas come paced in real time, far more
# often), so what was sent plays now rather than when the reply is found over (gap_s).
PAUSE_S = 0.25
# Caller speech during an agent reply that means the caller talked over it (the model then
# stops by itself): at least this many words, or this long; less is a backchannel.
TALKED_OVER_WORDS = 3
TALKED_OVER_MS = 700.0
_SENTENCE_ENDS = (".", "!", "?", "…", '"', "'", ")", "”")
MAX_COMMENTARY_CHARS = 1600  # an append is ≤500 tokens; ~4 characters a token, with margin
# What the model is told when a client delegation's backend failed: every delegation gets an
# answer.
BACKEND_FAILED = ("The answer could not be found just now. Apologise briefly, say you cannot "
                  "check that at the moment, and offer to help with something else.")
# base64 of μ-law silence (0xFF) uses only these: a delta is silent when stripping them leaves
# nothing, which for voiced audio stops at its first character (a set of the whole delta, per
# delta, was the GPT-Live path's dearest line under load)
_SILENT_CHARS = "/w8="
BYTES_PER_MS = 8
_EPSILON_S = 1e-6


class LiveModel:
    """The GPT-Live protocol object for one call."""

    def __init__(self, profile: AgentProfile, options: LiveOptions | None = None, *,
                 gap_s: float = 0.8) -> None:
        self.options = options or LiveOptions()
        self.gap_s = gap_s
        self.input = InputClock()
        self._started = False  # session.start sent on this socket
        self._ready_at: float | None = None
        self._seconds_reported = 0.0
        self._replies = 0
        self._reply: str | None = None  # the agent reply under way (its item has the same id)
        self._reply_text: list[str] = []
        self._voiced_at = 0.0  # last voiced audio or words of the reply under way
        self._audio_at = 0.0  # the reply's last audio delta, voiced or not
        self._paused = False  # that pause was reported (AgentAudioPaused)
        self._caller: list[live.TranscriptDelta] = []  # the caller's open turn
        self._caller_heard_at = 0.0
        self._caller_turns = 0
        self._caller_since_reply = False  # the caller spoke since the agent's last reply began
        self._over_reply_ms, self._over_reply_words = 0.0, 0  # caller speech during the reply
        self._calls_seen: set[str] = set()
        self._calls_open: set[str] = set()
        self._outputs_waiting = 0  # outputs given since the last backend continuation
        self._delegations: set[str] = set()  # client delegations not yet answered
        self._transcript: list[tuple[str, str]] = []  # (role, text) for client delegations

    # ------------------------------------------------------------------ socket and session

    def socket_opened(self) -> Sequence[m.ModelInput]:
        """A fresh socket: the client speaks first (`session.start`)."""
        self._started = False
        self._reset_turns()
        return (m.SessionOpened(),)

    def configure(self, profile: AgentProfile, *, answer_turns: bool,
                  history: ConversationHistory | None = None,
                  max_items: int = 60, max_chars: int = 24_000) -> list[SendRealtime]:
        if self._started:  # fixed at start: only muting can change
            return [SendRealtime(live.MuteInput(muted=not answer_turns))]
        self._started = True
        restored = history.items(max_items, max_chars) if history is not None else []
        events = [SendRealtime(live.SessionStart(session_config(profile, self.options,
                                                                restored)))]
        if not answer_turns:
            events.append(SendRealtime(live.MuteInput()))
        return events

    def needs_new_session(self, old: AgentProfile, new: AgentProfile, spoke: bool) -> bool:
        return True  # a Live session's configuration is fixed by its first message

    def restore(self, history: ConversationHistory, max_items: int,
                max_chars: int) -> list[SendRealtime]:
        return []  # carried in the replacing session's `session.start` (see `configure`)

    def farewell(self) -> tuple[list[SendRealtime], float]:
        """Before closing: ask the server to finish, and wait this long for it to close."""
        return [SendRealtime(live.SessionClose())], 5.0

    # ------------------------------------------------------------------ caller audio

    def append_audio(self, audio: str) -> SendRealtime:
        self.input.caller_audio(len(audio) * 3 // 4 // BYTES_PER_MS)
        return SendRealtime(live.AppendAudio(audio))

    # ------------------------------------------------------------------ intents

    def cut(self, item_id: str, part: int, heard_ms: int, seq: int) -> list[SendRealtime]:
        return []  # the model owns its output timeline

    def stop_reply(self, reply_id: str, profile: AgentProfile) -> list[SendRealtime]:
        return []  # it stops by itself when talked over

    def ask_reply(self, body: dict[str, Any] | None) -> list[SendRealtime]:
        if body is None:
            if self._outputs_waiting and not self._calls_open:
                self._outputs_waiting = 0
                return [SendRealtime(live.ContinueBackend())]
            if self._calls_open or self._delegations:
                return []  # the answer is under way through the delegation
            return [SendRealtime(live.AppendContext(
                "commentary", "Answer the caller now, briefly."))]
        return [SendRealtime(live.AppendContext("commentary", str(body.get("instructions", ""))))]

    def tool_output(self, call_id: str, output: str) -> SendRealtime:
        if call_id in self._delegations:
            self._delegations.discard(call_id)
            output = BACKEND_FAILED if _is_failure(output) else clip_commentary(output)
            return SendRealtime(live.AppendContext("commentary", output, delegation_id=call_id))
        if call_id in self._calls_open:
            self._calls_open.discard(call_id)
            self._outputs_waiting += 1
            return SendRealtime(live.FunctionCallOutput(call_id, output))
        # A call of a session that is gone (or a failed backend response): the server would
        # refuse its output, so the result becomes a silent fact for the model.
        return SendRealtime(live.AppendContext("thinking", f"A lookup finished: {output}"))

    def caller_text(self, text: str) -> SendRealtime:
        digits = "".join(ch for ch in text.rsplit(":", 1)[-1] if ch in "0123456789*#ABCD")
        note = keypad_note(digits) if digits else text
        return SendRealtime(live.AppendContext("instructions", note))

    def system_note(self, text: str) -> SendRealtime:
        return SendRealtime(live.AppendContext("instructions", text))

    def cost(self, profile: AgentProfile, usage: dict[str, Any]) -> float:
        seconds = usage.get("seconds")
        if isinstance(seconds, int | float) and not isinstance(seconds, bool):
            return live_active_cost(float(seconds))
        return backend_cost(self.options.backend_model, usage)

    def finish(self, now: float) -> Sequence[m.ModelInput]:
        """The call ended: the active seconds not yet reported (`session.closed` comes after
        the call's record is closed)."""
        if self._ready_at is None:
            return ()
        total = now - self._ready_at
        self._ready_at = None
        return self._seconds(total)

    # ------------------------------------------------------------------ time

    @property
    def next_tick(self) -> float | None:
        """When `tick` has work if nothing else happens first (read after every message, so
        without building a list)."""
        at = self.input.next_wakeup
        if self._reply is not None:
            at = _earlier(at, self._voiced_at + self.gap_s)
            if not self._paused:
                at = _earlier(at, self._audio_at + PAUSE_S)
        if self._caller:
            at = _earlier(at, self._caller_heard_at + self.gap_s)
        return at

    def tick(self, now: float) -> tuple[list[m.ModelInput], list[SendRealtime]]:
        """Silence for a stalled caller, and the turns that time has ended."""
        sends = [SendRealtime(live.AppendAudio(SILENCE_FRAME))
                 for _ in range(self.input.silence_due(now))]
        inputs: list[m.ModelInput] = []
        now += _EPSILON_S  # a tick at exactly `next_tick` must find its work due
        reply = self._reply
        if reply is not None and not self._paused and now - self._audio_at >= PAUSE_S:
            self._paused = True  # what it sent so far plays now, its last partial frame too
            inputs.append(m.AgentAudioPaused(reply, reply))
        if reply is not None and now - self._voiced_at >= self.gap_s:
            inputs += self._end_reply()
        if self._caller and now - self._caller_heard_at >= self.gap_s:
            inputs += self._end_caller_turn(answered=self._reply is None)
        return inputs, sends

    # ------------------------------------------------------------------ server events

    def receive(self, text: str | bytes, now: float) -> Sequence[m.ModelInput]:
        event = live.parse(text)
        if isinstance(event, live.AudioDelta):  # the common case first
            return self._audio(event, now)
        if isinstance(event, live.TranscriptDelta):
            return self._words(event, now)
        if isinstance(event, live.BackendEvent):
            return self._backend(event)
        if isinstance(event, live.SessionStarted):
            return self._session_started(event, now)
        if isinstance(event, live.UsageUpdated):
            return self._seconds(event.seconds)
        if isinstance(event, live.SessionClosed):
            self._ready_at = None
            return () if event.seconds is None else self._seconds(event.seconds)
        if isinstance(event, live.DelegationCreated):
            return self._delegation(event)
        if isinstance(event, live.ServerError):
            return (self._error(event),)
        return ()

    def _session_started(self, event: live.SessionStarted, now: float) -> Sequence[m.ModelInput]:
        fmt = event.audio_format()
        accepted = fmt is None or fmt == ("audio/pcmu", 8000)
        if accepted:
            self._ready_at = now
            self._seconds_reported = 0.0
            self.input.start(now)
        detail = {} if accepted or fmt is None else {"input": fmt[0], "output": fmt[0]}
        return (m.Configured(accepted, detail, event.expires_at),)

    def _audio(self, event: live.AudioDelta, now: float) -> Sequence[m.ModelInput]:
        silent = not event.delta.strip(_SILENT_CHARS)
        inputs: list[m.ModelInput] = []
        if self._reply is None:
            if silent:
                return ()
            inputs += self._begin_reply(now)
        if not silent:
            self._voiced_at = now
        self._audio_at, self._paused = now, False
        reply = self._reply
        assert reply is not None
        inputs.append(m.AgentAudio(reply, reply, 0, event.delta))
        return inputs

    def _words(self, event: live.TranscriptDelta, now: float) -> Sequence[m.ModelInput]:
        if event.side == "input":
            if self._caller and event.start_ms - self._caller[-1].end_ms >= self.gap_s * 1000:
                inputs = self._end_caller_turn(answered=self._reply is None)
            else:
                inputs = []
            self._caller.append(event)
            self._caller_heard_at = now
            self._caller_since_reply = True
            if self._reply is not None:
                self._over_reply_ms += max(0.0, event.end_ms - event.start_ms)
                self._over_reply_words += len(event.delta.split())
            return inputs
        inputs = [] if self._reply is not None else self._begin_reply(now)
        self._voiced_at = now
        reply = self._reply
        assert reply is not None
        inputs.append(m.AgentText(reply, reply, event.delta))
        self._reply_text.append(event.delta)
        self._transcript_add("assistant", event.delta)
        return inputs

    def _begin_reply(self, now: float) -> list[m.ModelInput]:
        inputs: list[m.ModelInput] = []
        if self._caller:  # the agent answers the caller's open turn: it ends here
            inputs += self._end_caller_turn(answered=True)
        self._replies += 1
        self._reply = f"live_reply_{self._replies}"
        self._reply_text = []
        self._voiced_at = now
        self._caller_since_reply = False
        self._over_reply_ms, self._over_reply_words = 0.0, 0
        inputs.append(m.ReplyStarted(self._reply))
        return inputs

    def _end_reply(self) -> list[m.ModelInput]:
        reply = self._reply
        assert reply is not None
        self._reply = None
        text = "".join(self._reply_text).strip()  # fragments carry their own leading spaces
        # The model stops by itself when talked over, and no event says so: a reply that ends
        # mid-sentence, or with the caller's words over it (a backchannel, "mhm", is not that;
        # the caller's transcript may come only after the reply ended), was talked over.
        talked_over = bool(text) and (
            not text.endswith(_SENTENCE_ENDS) or self._over_reply_words >= TALKED_OVER_WORDS
            or self._over_reply_ms >= TALKED_OVER_MS)
        return [m.AgentTextDone(reply, reply, text), m.AgentAudioDone(reply, reply, talked_over),
                m.ReplyDone(reply, "completed", None, {})]

    def _end_caller_turn(self, *, answered: bool) -> list[m.ModelInput]:
        fragments, self._caller = self._caller, []
        text = "".join(f.delta for f in fragments).strip()
        if not text:
            return []
        self._caller_turns += 1
        item = f"live_caller_{self._caller_turns}"
        self._transcript.append(("user", text))
        inputs: list[m.ModelInput] = []
        if answered:  # spoken in the clear: a turn whose end turn latency is measured from
            inputs.append(m.CallerSpeechStopped(item, fragments[-1].end_ms, owes_reply=False))
        inputs.append(m.CallerTranscript(item, text, self.input.time_of(fragments[0].start_ms)))
        return inputs

    def _transcript_add(self, role: str, text: str) -> None:
        if self._transcript and self._transcript[-1][0] == role:
            self._transcript[-1] = (role, self._transcript[-1][1] + text)
        else:
            self._transcript.append((role, text))

    def _backend(self, event: live.BackendEvent) -> Sequence[m.ModelInput]:
        detail = event.detail
        if isinstance(detail, live.BackendFunctionCall):
            if detail.call_id in self._calls_seen:
                return ()
            self._calls_seen.add(detail.call_id)
            self._calls_open.add(detail.call_id)
            return (m.ToolCallRequested(event.delegation_id or "backend", detail.call_id,
                                        detail.name, detail.arguments),)
        if isinstance(detail, live.BackendCompleted) and detail.usage:
            return (m.UsageReported(dict(detail.usage), "backend"),)
        if isinstance(detail, live.BackendFailed):
            # The server discards a failed response's calls: outputs for them would be refused.
            self._calls_open.clear()
            return (m.ModelError(m.ErrorKind.OTHER, {"type": "backend", "code": detail.status,
                                                     "message": detail.message}),)
        return ()

    def _delegation(self, event: live.DelegationCreated) -> Sequence[m.ModelInput]:
        backend = self.options.backend
        if (event.target != "client" or backend is None  # a Responses agent: never ours
                or event.delegation_id in self._calls_seen):
            return ()
        self._calls_seen.add(event.delegation_id)
        self._delegations.add(event.delegation_id)
        conversation = [{"role": role, "text": text.strip()} for role, text in self._transcript
                        if text.strip()]
        if self._caller:
            conversation.append({"role": "user", "text": "".join(
                f.delta for f in self._caller).strip()})
        arguments = json.dumps({"delegation_id": event.delegation_id,
                                "conversation": conversation}, ensure_ascii=False)
        return (m.ToolCallRequested("client", event.delegation_id, backend_tool_name(backend),
                                    arguments),)

    def _seconds(self, cumulative: float) -> Sequence[m.ModelInput]:
        delta = cumulative - self._seconds_reported
        if delta <= 0:
            return ()
        self._seconds_reported = cumulative
        return (m.UsageReported({"seconds": round(delta, 3)}, "active"),)

    def _error(self, event: live.ServerError) -> m.ModelError:
        detail = {"type": event.type, "code": event.code, "message": event.message}
        if event.code in FATAL_ERROR_CODES:
            kind = m.ErrorKind.FATAL
        elif event.code in CONFLICT_CODES:
            kind = m.ErrorKind.CONFLICT
        else:
            kind = m.ErrorKind.OTHER  # most errors leave a started session running
        return m.ModelError(kind, detail)

    def _reset_turns(self) -> None:
        self._reply = None
        self._caller = []
        self._calls_open.clear()
        self._outputs_waiting = 0
        self._delegations.clear()  # a new session never gets an old delegation's answer
        self.input.stop()


def _earlier(at: float | None, other: float) -> float:
    return other if at is None or other < at else at


def clip_commentary(text: str) -> str:
    """`text` within one append's limit (500 tokens): cut after the last whole sentence that
    fits, or at a word, when a backend's answer is longer than anyone should hear at once."""
    if len(text) <= MAX_COMMENTARY_CHARS:
        return text
    head = text[:MAX_COMMENTARY_CHARS]
    end = max(head.rfind(". "), head.rfind("? "), head.rfind("! "))
    if end > MAX_COMMENTARY_CHARS // 2:
        return head[:end + 1]
    return head.rsplit(" ", 1)[0]


def _is_failure(output: str) -> bool:
    """Whether a tool's output is the runner's failure (`{"error": ...}`), not an answer."""
    if not output.startswith('{"error"'):
        return False
    try:
        value = json.loads(output)
    except ValueError:
        return False
    return isinstance(value, dict) and set(value) == {"error"}
