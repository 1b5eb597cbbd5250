"""The OpenAI Realtime API behind the model seam (`model.ModelProtocol`): its server events as
model-neutral inputs, the session's intents as its client events.

What is Realtime's alone lives here: which error codes are fatal or harmless, the truncate's
`event_id` that lets a rejection be recognised, `response.cancel` only when the server would not
cancel by itself (`interrupt_response` off), a voice that cannot change once the session has
spoken, `session.update` restating μ-law (or PCM16) both ways, and token pricing.
No I/O. No clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from callbridge.core import model as m
from callbridge.core import realtime_events as rt
from callbridge.core.actions import SendRealtime
from callbridge.core.agent import AgentProfile
from callbridge.core.audio_path import session_format
from callbridge.core.history import ConversationHistory
from callbridge.core.pricing import response_cost

FATAL_ERROR_CODES = frozenset(
    {"beta_api_shape_disabled", "model_not_found", "invalid_api_key", "insufficient_quota"}
)


class RealtimeModel:
    """The Realtime API's protocol object for one call (its audio format is fixed per call)."""

    def __init__(self, profile: AgentProfile) -> None:
        self._format = session_format(profile.audio_format)["type"]

    def socket_opened(self) -> Sequence[m.ModelInput]:
        return ()  # the server speaks first: `session.created`

    def receive(self, text: str | bytes, now: float) -> Sequence[m.ModelInput]:
        event = rt.parse(text)
        translate = _INPUTS.get(type(event))
        return () if translate is None else (translate(self, event),)

    def configure(self, profile: AgentProfile, *, answer_turns: bool,
                  history: ConversationHistory | None = None) -> list[SendRealtime]:
        return [SendRealtime(rt.SessionUpdate(profile.session(create_response=answer_turns)))]

    def needs_new_session(self, old: AgentProfile, new: AgentProfile, spoke: bool) -> bool:
        return new.voice != old.voice and spoke  # a session's voice is fixed once it spoke

    def append_audio(self, audio: str) -> SendRealtime:
        return SendRealtime(rt.AppendAudio(audio))

    def cut(self, item_id: str, part: int, heard_ms: int, seq: int) -> list[SendRealtime]:
        event_id = f"{rt.TRUNCATE_EVENT_PREFIX}{seq}"
        return [SendRealtime(rt.TruncateItem(item_id, part, heard_ms, event_id))]

    def stop_reply(self, reply_id: str, profile: AgentProfile) -> list[SendRealtime]:
        if profile.interrupt_response:
            return []  # the server cancels it when the caller's speech starts
        return [SendRealtime(rt.CancelResponse(reply_id))]

    def ask_reply(self, body: dict[str, Any] | None) -> list[SendRealtime]:
        return [SendRealtime(rt.CreateResponse(body))]

    def tool_output(self, call_id: str, output: str) -> SendRealtime:
        return SendRealtime(rt.CreateItem(
            {"type": "function_call_output", "call_id": call_id, "output": output}))

    def caller_text(self, text: str) -> SendRealtime:
        return SendRealtime(rt.CreateItem(
            {"type": "message", "role": "user",
             "content": [{"type": "input_text", "text": text}]}))

    def system_note(self, text: str) -> SendRealtime:
        return SendRealtime(rt.CreateItem(
            {"type": "message", "role": "system",
             "content": [{"type": "input_text", "text": text}]}))

    def restore(self, history: ConversationHistory, max_items: int,
                max_chars: int) -> list[SendRealtime]:
        return [SendRealtime(rt.CreateItem(item))
                for item in history.items(max_items, max_chars)]

    def cost(self, profile: AgentProfile, usage: dict[str, Any]) -> float:
        return response_cost(profile.model, usage)

    next_tick: float | None = None  # Realtime's turns come as events: no time needed

    def tick(self, now: float) -> tuple[list[m.ModelInput], list[SendRealtime]]:
        return [], []

    def farewell(self) -> tuple[list[SendRealtime], float]:
        return [], 0.0

    def finish(self, now: float) -> Sequence[m.ModelInput]:
        return ()

    # ------------------------------------------------------------------ server events

    def _configured(self, event: rt.SessionUpdated) -> m.Configured:
        formats = (event.audio_format("input"), event.audio_format("output"))
        accepted = formats == (self._format, self._format)
        return m.Configured(accepted, {} if accepted else
                            {"input": formats[0], "output": formats[1]})

    def _error(self, event: rt.ServerError) -> m.ModelError:
        detail = {"type": event.type, "code": event.code, "message": event.message}
        if event.code == "response_cancel_not_active":
            kind = m.ErrorKind.HARMLESS
        elif event.code == "conversation_already_has_active_response":
            kind = m.ErrorKind.CONFLICT
        elif event.code in FATAL_ERROR_CODES:
            kind = m.ErrorKind.FATAL
        elif (event.event_id or "").startswith(rt.TRUNCATE_EVENT_PREFIX):
            kind = m.ErrorKind.CUT_REFUSED
        else:
            kind = m.ErrorKind.OTHER
        return m.ModelError(kind, detail)


_Translate = Callable[[RealtimeModel, Any], m.ModelInput]
_INPUTS: dict[type, _Translate] = {
    rt.AudioDelta: lambda _, e: m.AgentAudio(e.response_id, e.item_id, e.content_index,
                                             e.delta),
    rt.AudioDone: lambda _, e: m.AgentAudioDone(e.response_id, e.item_id),
    rt.TranscriptDelta: lambda _, e: m.AgentText(e.response_id, e.item_id, e.delta),
    rt.TranscriptDone: lambda _, e: m.AgentTextDone(e.response_id, e.item_id, e.transcript),
    rt.SpeechStarted: lambda _, e: m.CallerSpeechStarted(e.item_id, e.audio_start_ms),
    rt.SpeechStopped: lambda _, e: m.CallerSpeechStopped(e.item_id, e.audio_end_ms),
    rt.InputTranscription: lambda _, e: m.CallerTranscript(e.item_id, e.transcript),
    rt.ResponseCreated: lambda _, e: m.ReplyStarted(e.response_id),
    rt.ResponseDone: lambda _, e: m.ReplyDone(e.response_id, e.status, e.reason, e.usage),
    rt.FunctionCallDone: lambda _, e: m.ToolCallRequested(e.response_id, e.call_id, e.name,
                                                          e.arguments),
    rt.SessionCreated: lambda _, e: m.SessionOpened(),
    rt.SessionUpdated: RealtimeModel._configured,
    rt.ServerError: RealtimeModel._error,
}
