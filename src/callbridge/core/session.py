"""One call's state machine: Twilio messages and Realtime events in, ordered actions out.

States: CONNECTING (created at the webhook, upstream opening, no media socket yet) → STREAMING
(Twilio `start` received) → ENDING (we asked for the media socket to close) → ENDED. The upstream
socket has its own small machine: OPENING → CONFIGURING (socket open, `session.update` sent) →
READY (`session.updated` confirmed μ-law both ways) and back to OPENING on loss, or FAILED when the
reconnect budget is spent.

Rules this module enforces (see ../../../docs/design.md):
- Barge-in on `speech_started`: drop queued agent audio, Twilio `clear`, truncate each item at the
  mark-confirmed played position (never more than was received), and `response.cancel` only when
  the server would not cancel by itself; late deltas of interrupted items are dropped.
- Agent audio goes out in whole 20 ms frames, paced so Twilio holds about `lead_ms`, each chunk
  followed by a mark; nothing is sent before `start` gives the stream SID.
- One active response at a time; tool outputs wait for `response.done`, then one `response.create`.
- On upstream loss: reconnect with backoff, restore the conversation as items, do not greet again;
  when the budget is spent, end the stream so Twilio plays the apology after `</Connect>`.
No I/O. No clock: every entry point takes `now` in seconds.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from callbridge.core import realtime_events as rt
from callbridge.core import twilio_messages as tw
from callbridge.core.actions import (
    Action,
    CloseUpstream,
    EndStream,
    HangUp,
    Note,
    OpenUpstream,
    RedirectCall,
    RunTool,
    SaveRecording,
    SendRealtime,
    SendTwilio,
    StartRecording,
    TurnFinished,
)
from callbridge.core.agent import AgentProfile
from callbridge.core.as_heard import AsHeardTimeline
from callbridge.core.audio_path import audio_path
from callbridge.core.call_control import _BUILTINS, ANSWER_TIMEOUT_S, CallControl
from callbridge.core.comfort import COMFORT_ITEM, comfort_loop
from callbridge.core.control import Deadlines
from callbridge.core.history import ConversationHistory, heard_text
from callbridge.core.outbound import OutboundAudio
from callbridge.core.playback import Echo, PlaybackTracker
from callbridge.core.pricing import response_cost
from callbridge.core.states import CallState, UpstreamState
from callbridge.errors import RealtimeProtocolError, TwilioProtocolError

BYTES_PER_MS = 8  # μ-law, 8 kHz
FATAL_ERROR_CODES = frozenset(
    {"beta_api_shape_disabled", "model_not_found", "invalid_api_key", "insufficient_quota"}
)
_SID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Timing:
    """Pacing and recovery knobs; the defaults are what the references agree on."""

    chunk_ms: int = 40
    lead_ms: int = 300
    reconnect_delays: tuple[float, ...] = (0.2, 0.4, 0.8, 1.6, 3.2)
    input_backlog_ms: int = 3000
    history_items: int = 60
    history_chars: int = 24_000
    # OpenAI ends a Realtime session at 60 min; replace it at a quiet turn boundary before that
    recycle_after_s: float = 55 * 60
    # A reply is owed and the upstream has said nothing for this long: the socket is stalled
    # (no FIN, no RST; pings would notice only after 20-40 s). None turns the check off.
    upstream_stall_s: float | None = 3.0


@dataclass(slots=True)
class SessionStats:
    frames_in: int = 0
    chunks_out: int = 0
    malformed_twilio: int = 0
    malformed_realtime: int = 0
    truncates_sent: int = 0
    truncate_errors: int = 0
    upstream_errors: int = 0
    reconnects: int = 0
    late_deltas_dropped: int = 0
    stale_marks: int = 0
    barge_ins: int = 0
    usage: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _AgentItem:
    response_id: str
    text: list[str] = field(default_factory=list)
    final_text: str | None = None
    audio_done: bool = False
    started_at: float | None = None

    def transcript(self) -> str:
        return self.final_text if self.final_text is not None else "".join(self.text)


class CallSession(CallControl):
    """The whole decision-making of one call. Adapters feed it and carry out what it returns."""

    def __init__(self, call_sid: str, profile: AgentProfile, timing: Timing | None = None, *,
                 agents: Mapping[str, AgentProfile] | None = None,
                 awaiting_answer: bool = False) -> None:
        """`agents` are the profiles this call may be handed to; `awaiting_answer` keeps the
        agent quiet until `answered_by()` says whether a person or a machine picked up."""
        self.call_sid = call_sid
        self.profile = profile
        self.cost_usd = 0.0
        self.timing = timing or Timing()
        self.state = CallState.CONNECTING
        self.upstream = UpstreamState.CLOSED
        self.stream_sid: str | None = None
        self.stats = SessionStats()
        self.history = ConversationHistory()
        self.end_reason: str | None = None
        self._playback = PlaybackTracker()
        self._outbound = OutboundAudio()
        self._chunk_bytes = self.timing.chunk_ms * BYTES_PER_MS
        self._lead_s = self.timing.lead_ms / 1000.0
        self._paced_until: float | None = None
        self._input_backlog: deque[str] = deque(maxlen=max(1, self.timing.input_backlog_ms // 20))
        # Caller audio the current session has been given since the caller's last turn ended
        # (its `speech_stopped`): what a lost or replaced session takes with it unanswered.
        self._unanswered: deque[str] = deque(maxlen=self._input_backlog.maxlen)
        self._retries = 0
        self._ever_ready = False
        self._format_retry_used = False
        self._items: dict[str, _AgentItem] = {}
        self._closed_items: set[str] = set()
        self._suppressed_responses: set[str] = set()
        self._active_response: str | None = None
        self._response_requested = False
        self._awaiting_reply = False
        self._resume_after_reconnect = False
        self._tools_running: set[str] = set()
        self._tool_names: dict[str, str] = {}  # call_id → tool name, for every call seen
        self._pending_items: list[rt.CreateItem] = []  # sent before the next response.create
        self._followup: dict[str, Any] | None = None  # that response's body
        self._followup_wanted = False
        self._no_followup = False
        self._pending_switch: str | None = None
        self._speech_stopped_at: float | None = None  # awaiting the reply's first delta
        self._speech_end_media: int | None = None  # awaiting the reply's first played mark
        self._model_ms: int | None = None
        self._audio = audio_path(profile.audio_format)  # fixed for the whole call
        self._comfort = comfort_loop(profile.comfort_sound)
        self._recycling = False  # a planned session replacement: no comfort tone, no resume
        self._heard = AsHeardTimeline() if profile.record_audio else None
        self._comfort_at = 0
        self._media_ms = 0  # the latest Twilio media timestamp: the call's media clock
        self._media_at = 0.0  # when the latest media frame arrived (our clock)
        self._audio_origin_ms: int | None = None  # media time of this upstream's first frame
        self._speech_started_at: dict[str, float] = {}
        self._truncates = 0
        self._agents = dict(agents or {})
        self._awaiting_answer = awaiting_answer
        self._deadlines = Deadlines(profile)
        self._upstream_stall_s = self.timing.upstream_stall_s
        self._upstream_heard_at = 0.0  # the last upstream event, on the session's clock
        self._owed_since: float | None = None  # since when a reply has been owed
        self._timer_at: float | None = None
        self._closing: HangUp | RedirectCall | None = None
        self._closed = False
        self._response_audio: set[str] = set()
        self._caller_speaking = False
        self._dtmf: list[str] = []
        self._dtmf_turns = 0

    # ------------------------------------------------------------------ lifecycle

    def begin(self, now: float) -> list[Action]:
        """The call exists (webhook answered): open the upstream session right away."""
        if self.upstream is not UpstreamState.CLOSED or self.state is CallState.ENDED:
            return []
        self.upstream = UpstreamState.OPENING
        return [OpenUpstream(attempt=0, delay=0.0)]

    @property
    def next_wakeup(self) -> float | None:
        """When the adapter must call `wake()` next (pacing and call timers), or None."""
        paced = self._paced_until if (self._outbound or self._comfort) else None
        if paced is None:
            return self._timer_at
        if self._timer_at is None:
            return paced
        return min(paced, self._timer_at)

    def wake(self, now: float) -> list[Action]:
        """A wake-up asked for by `next_wakeup` is due."""
        actions = self._pump(now) + self._on_due(now) + self._maybe_close(now)
        self._refresh_timers(now)
        return actions

    # ------------------------------------------------------------------ upstream transport

    def upstream_opened(self, now: float) -> list[Action]:
        """The Realtime socket is open; `session.created` comes next."""
        if self.upstream is UpstreamState.OPENING:
            self.upstream = UpstreamState.CONFIGURING
        return []

    def upstream_failed(self, now: float, reason: str) -> list[Action]:
        """Opening the Realtime socket failed."""
        return self._upstream_down(now, "upstream_connect_failed", reason)

    def upstream_lost(self, now: float, reason: str) -> list[Action]:
        """The Realtime socket closed or broke."""
        return self._upstream_down(now, "upstream_lost", reason)

    def _upstream_down(self, now: float, kind: str, reason: str) -> list[Action]:
        if self.state is CallState.ENDED or self.upstream in (
            UpstreamState.FAILED, UpstreamState.CLOSED,
        ):
            return []
        actions: list[Action] = [Note(kind, {"reason": reason, "retries": self._retries})]
        self._recycling = False  # a failed replacement is an outage like any other
        self._carry_unanswered_over()
        self._audio_origin_ms = None
        self._audio.caller_reset()
        self._abandon_active_response()
        if self._retries >= len(self.timing.reconnect_delays):
            return actions + self._give_up(now, f"upstream unavailable: {reason}")
        delay = self.timing.reconnect_delays[self._retries]
        self._retries += 1
        self.stats.reconnects += 1
        self.upstream = UpstreamState.OPENING
        return [*actions, OpenUpstream(attempt=self._retries, delay=delay), *self._pump(now)]

    def _abandon_active_response(self) -> None:
        """The socket died mid-response: keep what was received, let it play, resume later."""
        if self._active_response is not None or self._response_requested or self._awaiting_reply:
            self._resume_after_reconnect = True
        for item_id, item in self._items.items():
            if not item.audio_done:
                self._finish_item_audio(item_id, item)
            self.history.agent_said(item_id, item.transcript())
        self._active_response = None
        self._response_requested = False

    def _give_up(self, now: float, reason: str) -> list[Action]:
        self.upstream = UpstreamState.FAILED
        actions: list[Action] = [Note("upstream_gave_up", {"reason": reason}),
                                 CloseUpstream(reason)]
        if self.state is CallState.STREAMING:
            actions += self._end_stream(reason)
        return actions

    def _end_stream(self, reason: str) -> list[Action]:
        self.state = CallState.ENDING
        self.end_reason = reason
        self._outbound.drop()
        return [EndStream(reason)]

    # ------------------------------------------------------------------ Twilio side

    def receive_twilio(self, text: str | bytes, now: float) -> list[Action]:
        """One frame from the Twilio media socket. Malformed frames are counted and dropped."""
        try:
            message = tw.parse(text)
        except TwilioProtocolError as exc:
            self.stats.malformed_twilio += 1
            return _sampled_note("malformed_twilio_frame", self.stats.malformed_twilio, exc)
        if type(message) is tw.Media:
            return self._on_media(message, now)
        actions: list[Action] = []
        if isinstance(message, tw.MarkEcho):
            actions = self._on_mark(message, now)
        elif isinstance(message, tw.Start):
            actions = self._on_start(message, now)
        elif isinstance(message, tw.Stop):
            actions = self._end(now, "caller hung up")
        elif isinstance(message, tw.Dtmf):
            actions = self._on_dtmf(message, now)
        self._refresh_timers(now)
        return actions

    def twilio_closed(self, now: float) -> list[Action]:
        """The media socket is gone (after `stop`, after our `EndStream`, or abruptly)."""
        return self._end(now, self.end_reason or "media stream closed")

    def _on_media(self, media: tw.Media, now: float) -> list[Action]:
        self.stats.frames_in += 1
        self._media_ms = media.timestamp
        self._media_at = now
        if self.state is not CallState.STREAMING:
            return []
        if self._heard is not None:
            self._heard.caller_frame(media.timestamp, media.payload)
        if self.upstream is UpstreamState.READY:
            if self._audio_origin_ms is None:
                self._audio_origin_ms = media.timestamp
            self._unanswered.append(media.payload)
            return self._forward_caller(media.payload)
        self._input_backlog.append(media.payload)
        return []

    def _carry_unanswered_over(self) -> None:
        """The session is going: the caller audio it was given since their last turn ended
        (a half-said sentence, frames in flight when the socket died) goes first in the backlog,
        so the next session hears the whole utterance. Oldest frames drop past the backlog's cap."""
        if self._unanswered:
            self._input_backlog = deque([*self._unanswered, *self._input_backlog],
                                        maxlen=self._input_backlog.maxlen)
            self._unanswered.clear()

    def _forward_caller(self, payload: str) -> list[Action]:
        """Caller audio to the Realtime session, in the session's format."""
        try:
            audio = self._audio.caller_audio(payload)
        except (binascii.Error, ValueError) as exc:  # only the PCM16 path decodes it
            self.stats.malformed_twilio += 1
            return _sampled_note("malformed_twilio_frame", self.stats.malformed_twilio, exc)
        if not audio:  # the resampler held the frame back; an empty append is only noise
            return []
        return [SendRealtime(rt.AppendAudio(audio))]

    def _on_start(self, start: tw.Start, now: float) -> list[Action]:
        if self.state is not CallState.CONNECTING:
            return [Note("duplicate_start", {"stream_sid": start.stream_sid})]
        if start.call_sid != self.call_sid or not _SID.match(start.stream_sid):
            return self._end_stream("stream does not belong to this call")
        self.state = CallState.STREAMING
        self.stream_sid = start.stream_sid
        if self.upstream is UpstreamState.FAILED:
            return self._end_stream("upstream unavailable")
        self._deadlines.start(now)
        if self._awaiting_answer:
            self._deadlines.answer_by = now + ANSWER_TIMEOUT_S
        actions: list[Action] = [Note("stream_started", {"stream_sid": start.stream_sid})]
        if self.profile.record:
            actions.append(StartRecording())
        return actions + self._pump(now)

    def _on_mark(self, echo: tw.MarkEcho, now: float) -> list[Action]:
        result = self._playback.echoed(echo.name, now)
        if self._heard is not None and self._playback.played:
            self._record_heard(b"".join(self._playback.played))
            self._playback.played.clear()
        if result is Echo.STALE:
            self.stats.stale_marks += 1
            return []
        if result is Echo.UNKNOWN:
            return []
        actions = self._turn_latency() + self._finish_played_items(now)
        return actions + self._pump(now) + self._maybe_close(now)

    def _turn_latency(self) -> list[Action]:
        """On the first played mark after the caller stopped: how long they waited, in media
        time (the end of their speech by the VAD, to agent audio Twilio confirmed playing)."""
        if self._speech_end_media is None:
            return []
        waited = self._media_ms - self._speech_end_media
        self._speech_end_media = None
        return [Note("turn_latency", {"ms": max(0, waited), "model_ms": self._model_ms})]

    def _end(self, now: float, reason: str) -> list[Action]:
        if self.state is CallState.ENDED:
            return []
        self.state = CallState.ENDED
        self.end_reason = self.end_reason or reason
        actions: list[Action] = []
        for item_id in list(self._items):
            heard = self._playback.heard_ms(item_id)
            received = self._playback.item(item_id).received_ms
            actions.append(self._finish_item(item_id, now, interrupted=heard < int(received)))
        self._outbound.drop()
        self._tools_running.clear()
        if self.upstream not in (UpstreamState.CLOSED, UpstreamState.FAILED):
            actions.append(CloseUpstream(self.end_reason))
        self.upstream = UpstreamState.CLOSED
        actions.append(Note("call_ended", {"reason": self.end_reason}))
        if self._heard is not None and self._heard.seconds() > 0:
            actions.append(SaveRecording(bytes(self._heard.caller), bytes(self._heard.agent)))
        return actions

    def _record_heard(self, audio: bytes) -> None:
        """Agent audio the caller heard, ending now (on the media clock)."""
        if self._heard is not None and audio:
            self._heard.agent_played(audio, self._media_ms)

    # ------------------------------------------------------------------ Realtime side

    def receive_realtime(self, text: str | bytes, now: float) -> list[Action]:
        """One server event from the Realtime socket."""
        if self.state is CallState.ENDED:
            return []
        self._upstream_heard_at = now
        try:
            event = rt.parse(text)
        except RealtimeProtocolError as exc:
            self.stats.malformed_realtime += 1
            return _sampled_note("malformed_realtime_event", self.stats.malformed_realtime, exc)
        handler = _HANDLERS.get(type(event))
        if handler is None:
            return []
        actions = handler(self, event, now)
        self._refresh_timers(now)
        return actions

    def _on_session_created(self, event: rt.SessionCreated, now: float) -> list[Action]:
        if self.upstream is UpstreamState.OPENING:
            self.upstream = UpstreamState.CONFIGURING
        return [self._session_update()]

    def _on_session_updated(self, event: rt.SessionUpdated, now: float) -> list[Action]:
        formats = (event.audio_format("input"), event.audio_format("output"))
        expected = self._audio.session_format["type"]
        if formats != (expected, expected):
            note = Note("audio_format_mismatch", {"input": formats[0], "output": formats[1]})
            if self._format_retry_used:
                return [note, *self._give_up(now, "upstream refused μ-law audio")]
            self._format_retry_used = True
            return [note, self._session_update()]
        if self.upstream is UpstreamState.READY:
            return []
        return self._on_ready(now)

    def _on_ready(self, now: float) -> list[Action]:
        self.upstream = UpstreamState.READY
        self._retries = 0
        self._recycling = False
        self._deadlines.recycle_at = now + self.timing.recycle_after_s
        actions: list[Action] = []
        if self._ever_ready:
            items = self.history.items(self.timing.history_items, self.timing.history_chars)
            actions.append(Note("upstream_restored", {"items": len(items)}))
            self._pending_items.clear()  # already in the history just restored
            actions += [SendRealtime(rt.CreateItem(item)) for item in items]
            if self._resume_after_reconnect or self.history.last_is_caller():
                actions.append(self._request_response(None))
        else:
            self._ever_ready = True
            actions.append(Note("upstream_ready"))
            greeting = self.profile.greeting_response()
            if greeting is not None and not self._awaiting_answer:
                actions.append(self._request_response(greeting))
        self._resume_after_reconnect = False
        self._unanswered.clear()
        if self.state is CallState.STREAMING:
            self._unanswered.extend(self._input_backlog)
            for payload in self._input_backlog:
                actions += self._forward_caller(payload)
            # the new session's audio clock starts at the oldest frame it is given
            self._audio_origin_ms = self._media_ms - 20 * len(self._input_backlog)
        self._input_backlog.clear()
        return actions + self._flush_pending()

    def _on_error(self, event: rt.ServerError, now: float) -> list[Action]:
        detail = {"type": event.type, "code": event.code, "message": event.message}
        if event.code == "response_cancel_not_active":
            return []
        if event.code == "conversation_already_has_active_response":
            self._response_requested = False
            return [Note("response_conflict", detail)]
        if event.code in FATAL_ERROR_CODES:
            return self._give_up(now, f"upstream error {event.code}")
        if (event.event_id or "").startswith(rt.TRUNCATE_EVENT_PREFIX):
            self.stats.truncate_errors += 1
            return [Note("truncate_rejected", detail)]
        self.stats.upstream_errors += 1
        return [Note("upstream_error", detail)]

    def _on_speech_started(self, event: rt.SpeechStarted, now: float) -> list[Action]:
        """Barge-in: the caller talks over the agent."""
        self._speech_started_at[event.item_id] = now
        self._caller_speaking = True
        self._deadlines.caller_active(now)
        audible = (self._playback.others_pending(COMFORT_ITEM)
                   or not self._outbound.only(COMFORT_ITEM))
        responding = self._active_response is not None
        if not (audible or responding or self._items):
            return self._stop_comfort(now) if self._comfort else []
        self.stats.barge_ins += 1
        detail: dict[str, object] = {"item_id": event.item_id}
        if self._audio_origin_ms is not None:  # speech start → clear, in media time
            started = self._audio_origin_ms + event.audio_start_ms
            detail["reaction_ms"] = max(0, self._media_ms - started)
        actions: list[Action] = [Note("barge_in", detail)]
        self._outbound.drop()
        self._audio.agent_reset()
        if self._playback.awaiting_echo() and self.stream_sid is not None:
            self._record_heard(self._playback.clear(now))
            actions.append(SendTwilio(tw.SendClear(self.stream_sid)))
        for item_id in list(self._items):
            actions += self._truncate(item_id)
            actions.append(self._finish_item(item_id, now, interrupted=True))
        if self._active_response is not None:
            self._suppressed_responses.add(self._active_response)
            if not self.profile.interrupt_response:
                actions.append(SendRealtime(rt.CancelResponse(self._active_response)))
        return actions

    def _truncate(self, item_id: str) -> list[Action]:
        audio = self._playback.item(item_id)
        heard = self._playback.heard_ms(item_id)
        if audio.received_ms <= 0 or heard >= int(audio.received_ms):
            return []
        self._truncates += 1
        self.stats.truncates_sent += 1
        event_id = f"{rt.TRUNCATE_EVENT_PREFIX}{self._truncates}"
        return [SendRealtime(rt.TruncateItem(item_id, audio.content_index, heard, event_id))]

    def _on_speech_stopped(self, event: rt.SpeechStopped, now: float) -> list[Action]:
        self.history.reserve_caller_turn(event.item_id)
        self._unanswered.clear()  # committed: the caller's turn is the session's now
        self._speech_stopped_at = now
        self._model_ms = None
        self._speech_end_media = (None if self._audio_origin_ms is None
                                  else self._audio_origin_ms + event.audio_end_ms)
        self._awaiting_reply = True
        self._caller_speaking = False
        self._deadlines.caller_active(now)
        return []

    def _on_input_transcription(self, event: rt.InputTranscription, now: float) -> list[Action]:
        self.history.caller_said(event.item_id, event.transcript)
        text = event.transcript
        started = self._speech_started_at.pop(event.item_id, now)
        return [TurnFinished("caller", text, text, False, event.item_id, now, started)]

    def _on_response_created(self, event: rt.ResponseCreated, now: float) -> list[Action]:
        self._active_response = event.response_id
        self._response_requested = False
        self._awaiting_reply = False
        return []

    def _on_audio_delta(self, event: rt.AudioDelta, now: float) -> list[Action]:
        item = self._live_item(event.response_id, event.item_id)
        if item is None:
            self.stats.late_deltas_dropped += 1
            return []
        try:
            audio = base64.b64decode(event.delta, validate=True)
        except binascii.Error as exc:
            self.stats.malformed_realtime += 1
            return _sampled_note("malformed_realtime_event", self.stats.malformed_realtime, exc)
        ms = len(audio) / self._audio.bytes_per_ms
        stop = self._stop_comfort(now) if self._comfort else []
        self._playback.received(event.item_id, event.content_index, ms)
        self._outbound.push(event.item_id, event.content_index, self._audio.agent_audio(audio))
        self._response_audio.add(event.response_id)
        if self._speech_stopped_at is not None:  # the model's share of the turn
            self._model_ms = round((now - self._speech_stopped_at) * 1000)
            self._speech_stopped_at = None
        return stop + self._pump(now)

    def _on_audio_done(self, event: rt.AudioDone, now: float) -> list[Action]:
        item = self._items.get(event.item_id)
        if item is None:
            return []
        self._finish_item_audio(event.item_id, item)
        return self._pump(now) + self._finish_played_items(now) + self._maybe_close(now)

    def _finish_item_audio(self, item_id: str, item: _AgentItem) -> None:
        """The model is done with this item's audio: the resampler's tail, then padding."""
        item.audio_done = True
        tail = self._audio.agent_flush()
        if tail:
            self._outbound.push(item_id, self._playback.item(item_id).content_index, tail)
        self._outbound.finish(item_id)

    def _on_transcript_delta(self, event: rt.TranscriptDelta, now: float) -> list[Action]:
        item = self._live_item(event.response_id, event.item_id)
        if item is not None:
            item.text.append(event.delta)
        return []

    def _on_transcript_done(self, event: rt.TranscriptDone, now: float) -> list[Action]:
        item = self._items.get(event.item_id)
        if item is not None:
            item.final_text = event.transcript
        return self._finish_played_items(now)

    def _on_function_call(self, event: rt.FunctionCallDone, now: float) -> list[Action]:
        if event.call_id in self._tool_names or event.response_id in self._suppressed_responses:
            return []
        self._tool_names[event.call_id] = event.name
        self.history.tool_called(event.call_id, event.name, event.arguments)
        builtin = _BUILTINS.get(event.name)
        if builtin is not None and event.name in self._builtins_enabled():
            return builtin(self, event, now)
        self._tools_running.add(event.call_id)
        if self.profile.filler_after_s > 0:
            self._deadlines.fillers[event.call_id] = now + self.profile.filler_after_s
        return [RunTool(event.call_id, event.name, event.arguments)]

    def _on_response_done(self, event: rt.ResponseDone, now: float) -> list[Action]:
        if event.response_id == self._active_response:
            self._active_response = None
        self._suppressed_responses.discard(event.response_id)
        _add_usage(self.stats.usage, event.usage)
        self.cost_usd += response_cost(self.profile.model, event.usage)
        for item_id, item in self._items.items():
            if item.response_id == event.response_id and not item.audio_done:
                self._finish_item_audio(item_id, item)
        actions: list[Action] = [Note("response_done", {
            "response_id": event.response_id, "status": event.status, "reason": event.reason,
            "usage": event.usage,
        })]
        cap = self.profile.cost_cap_usd
        if cap is not None and self.cost_usd >= cap and self._closing is None:
            actions.append(Note("cost_cap_reached", {"cost_usd": round(self.cost_usd, 4)}))
            actions += self._wrap_up(now, HangUp("cost cap reached"),
                                     "You must end the call now. Apologise briefly and say "
                                     "goodbye.")
        if event.response_id not in self._response_audio and not self._items:
            self._deadlines.agent_quiet_at = now
        actions += self._flush_pending()
        return (actions + self._pump(now) + self._finish_played_items(now)
                + self._maybe_close(now))

    def _on_item_truncated(self, event: rt.ItemTruncated, now: float) -> list[Action]:
        return []

    def _live_item(self, response_id: str, item_id: str) -> _AgentItem | None:
        """The item a delta belongs to, or None when its audio must be dropped (interrupted)."""
        item = self._items.get(item_id)
        if item is not None:
            return item
        if item_id in self._closed_items or response_id in self._suppressed_responses:
            return None
        item = self._items[item_id] = _AgentItem(response_id)
        return item

    # ------------------------------------------------------------------ playback

    def _pump(self, now: float) -> list[Action]:
        """Release agent audio to Twilio while it holds less than the lead."""
        self._paced_until = None
        if self.state is not CallState.STREAMING:
            return []
        if self._comfort and not self._outbound:
            self._top_up_comfort()
        if not self._outbound:
            return []
        sid = self.stream_sid
        assert sid is not None  # STREAMING implies start was received
        actions: list[Action] = []
        while True:
            # The epsilon keeps a wake-up at exactly `play_end - lead` from being re-armed forever.
            if self._playback.queued_seconds(now) > self._lead_s + 1e-6:
                self._paced_until = self._playback.play_end - self._lead_s
                break
            if self._comfort and not self._outbound:
                self._top_up_comfort()
            chunk = self._outbound.take(self._chunk_bytes)
            if chunk is None:
                break
            item_id, _, audio = chunk
            payload = base64.b64encode(audio).decode("ascii")
            name = self._playback.sent(item_id, len(audio) / BYTES_PER_MS, now,
                                       audio if self._heard is not None else b"")
            item = self._items.get(item_id)
            if item is not None and item.started_at is None:
                item.started_at = now
            actions.append(SendTwilio(tw.SendMedia(sid, payload)))
            actions.append(SendTwilio(tw.SendMark(sid, name)))
            self.stats.chunks_out += 1
        return actions

    def _comfort_wanted(self) -> bool:
        """The caller would hear dead air: a tool runs past its holding line, or the upstream
        is reconnecting — and no agent audio is queued or playing."""
        if self._closing is not None or self._outbound:
            return False
        waiting_on_tool = (bool(self._tools_running) and not self._deadlines.fillers
                           and self._active_response is None and not self._response_requested)
        reconnecting = (self._ever_ready and not self._recycling
                        and self.upstream in (UpstreamState.OPENING, UpstreamState.CONFIGURING))
        if not (waiting_on_tool or reconnecting):
            return False
        return not self._playback.others_pending(COMFORT_ITEM)

    def _top_up_comfort(self) -> None:
        if not self._comfort_wanted():
            return
        loop, size = self._comfort, self._chunk_bytes
        start = self._comfort_at % len(loop)
        chunk = (loop + loop)[start:start + size] if start + size > len(loop) else \
            loop[start:start + size]
        self._comfort_at = start + size
        self._outbound.push(COMFORT_ITEM, 0, chunk)

    def _stop_comfort(self, now: float) -> list[Action]:
        """Real agent audio (or the caller) takes over: drop the comfort sound at once."""
        if self._outbound.holds(COMFORT_ITEM):
            self._outbound.drop_item(COMFORT_ITEM)
        if not self._playback.is_pending(COMFORT_ITEM) or self.stream_sid is None:
            return []
        self._record_heard(self._playback.clear(now))
        return [SendTwilio(tw.SendClear(self.stream_sid))]

    def _finish_played_items(self, now: float) -> list[Action]:
        """Agent items whose audio is all delivered and confirmed played become turns."""
        if not self._items:
            return []
        pending = self._playback.pending_items()
        done = [
            item_id for item_id, item in self._items.items()
            if item.audio_done and item_id not in pending and not self._outbound.holds(item_id)
        ]
        if not pending and not self._outbound:
            self._deadlines.agent_quiet_at = now
        return [self._finish_item(item_id, now, interrupted=False) for item_id in done]

    def _finish_item(self, item_id: str, now: float, *, interrupted: bool) -> TurnFinished:
        item = self._items.pop(item_id)
        self._closed_items.add(item_id)
        text = item.transcript()
        received = self._playback.item(item_id).received_ms
        heard = text if received else ""  # no audio, nothing heard
        if interrupted and received:
            heard = heard_text(text, self._playback.heard_ms(item_id) / received)
        self.history.agent_said(item_id, heard)
        started = item.started_at if item.started_at is not None else now
        return TurnFinished("agent", text, heard, interrupted, item_id, now, started)

    def heard_ms(self, item_id: str) -> int:
        """Ms of an agent item the caller has heard (mark-confirmed)."""
        return self._playback.heard_ms(item_id)


def _sampled_note(kind: str, count: int, exc: Exception) -> list[Action]:
    """A note for the first few occurrences, then every hundredth, so garbage cannot flood logs."""
    if count <= 3 or count % 100 == 0:
        return [Note(kind, {"count": count, "error": str(exc)[:200]})]
    return []


def _add_usage(total: dict[str, int], usage: dict[str, object], prefix: str = "") -> None:
    for key, value in usage.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            total[prefix + key] = total.get(prefix + key, 0) + value
        elif isinstance(value, dict):
            _add_usage(total, value, f"{prefix}{key}.")


_Handler = Callable[[CallSession, Any, float], list[Action]]
_HANDLERS: dict[type, _Handler] = {
    rt.SessionCreated: CallSession._on_session_created,
    rt.SessionUpdated: CallSession._on_session_updated,
    rt.ServerError: CallSession._on_error,
    rt.SpeechStarted: CallSession._on_speech_started,
    rt.SpeechStopped: CallSession._on_speech_stopped,
    rt.InputTranscription: CallSession._on_input_transcription,
    rt.ResponseCreated: CallSession._on_response_created,
    rt.AudioDelta: CallSession._on_audio_delta,
    rt.AudioDone: CallSession._on_audio_done,
    rt.TranscriptDelta: CallSession._on_transcript_delta,
    rt.TranscriptDone: CallSession._on_transcript_done,
    rt.FunctionCallDone: CallSession._on_function_call,
    rt.ResponseDone: CallSession._on_response_done,
    rt.ItemTruncated: CallSession._on_item_truncated,
}
