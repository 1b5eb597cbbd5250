"""One call: Twilio messages and model events in, ordered actions out.

`CallSession` holds the call's own state (CONNECTING, created at the webhook with the upstream
opening → STREAMING, Twilio `start` received → ENDING, we asked for the media socket to close →
ENDED), dispatches every input, and decides the order of the actions. The rest is composed of
small parts, each owning one thing:

- `upstream_link.UpstreamLink`: the model session's machine, backoff, caller-audio backlog, stall
  watch;
- `reply.ReplyLifecycle`: idle → owed/requested → active, suppressed replies, the follow-up;
- `ending.CallEnding`: open → closing → closed, the grace deadline;
- `speech.AgentSpeech`: agent items, pacing, playback, comfort sound, barge-in cuts, turns;
- `conduct` and `builtin_tools`: call control and the built-in tools, as plain functions;
- `model` and `realtime_model`: the seam to the model API (the session never sees its wire).

Every entry point takes `now` in seconds: after calling one, carry out the returned actions in
order and re-read `next_wakeup`. No I/O. No clock.
"""

from __future__ import annotations

import binascii
import functools
import re
from collections.abc import Mapping

from callbridge.core import conduct, model_turns
from callbridge.core import twilio_messages as tw
from callbridge.core.actions import (
    Action,
    CallControl,
    CloseUpstream,
    EndStream,
    Note,
    SaveRecording,
    StartRecording,
    sampled,
)
from callbridge.core.agent import AgentProfile
from callbridge.core.control import Deadlines
from callbridge.core.ending import CallEnding
from callbridge.core.history import ConversationHistory
from callbridge.core.model import ModelProtocol
from callbridge.core.model_choice import model_for
from callbridge.core.playback import Echo
from callbridge.core.reply import ReplyLifecycle
from callbridge.core.reports import (
    MalformedModel,
    MalformedTwilio,
    StreamStarted,
    UpstreamConnectFailed,
    UpstreamGaveUp,
    UpstreamLost,
)
from callbridge.core.speech import BYTES_PER_MS, AgentSpeech
from callbridge.core.states import ENDED, STREAMING, CallState, UpstreamState
from callbridge.core.stats import SessionStats
from callbridge.core.timing import Timing
from callbridge.core.upstream_link import UpstreamLink
from callbridge.errors import ProtocolError, TwilioProtocolError

__all__ = ["BYTES_PER_MS", "CallSession", "SessionStats", "Timing"]

ANSWER_TIMEOUT_S = 35.0  # async AMD answers within 30 s; a verdict lost elsewhere must not mute us
_SID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class CallSession:
    """The whole decision-making of one call. Adapters feed it and carry out what it returns."""

    def __init__(self, call_sid: str, profile: AgentProfile, timing: Timing | None = None, *,
                 agents: Mapping[str, AgentProfile] | None = None,
                 awaiting_answer: bool = False, model: ModelProtocol | None = None) -> None:
        """`agents` are the profiles this call may be handed to; `awaiting_answer` keeps the
        agent quiet until `answered_by()` says whether a person or a machine picked up;
        `model` is the model API's protocol object (by default the one `profile` implies)."""
        self.call_sid = call_sid
        self.profile = profile
        self.agents = dict(agents or {})
        self.timing = timing or Timing()
        self.state = CallState.CONNECTING
        self.stream_sid: str | None = None
        self.stats = SessionStats()
        self.cost_usd = 0.0
        self.end_reason: str | None = None
        self.history = ConversationHistory()
        self.model = model or model_for(profile)
        self.link = UpstreamLink(self.timing)
        self.reply = ReplyLifecycle()
        self.deadlines = Deadlines(profile)
        self.ending = CallEnding(self.deadlines)
        self.speech = AgentSpeech(profile, self.timing, self.history, self.stats)
        self.awaiting_answer = awaiting_answer
        self.caller_speaking = False
        self.tools_running: set[str] = set()
        self.tool_names: dict[str, str] = {}  # call_id → tool name, for every call seen
        self.pending_switch: str | None = None
        self.keypad: list[str] = []
        self.keypad_turns = 0
        self.timer_at: float | None = None
        # Unix time minus `now`, given by the adapter: places a deadline a model states in
        # Unix time (a GPT-Live session's `expires_at`). None: such deadlines are not kept.
        self.wall_offset: float | None = None
        self.turns = model_turns.TurnTiming()
        self._dead_air = functools.partial(conduct.dead_air, self)  # asked only when quiet

    # ------------------------------------------------------------------ lifecycle

    @property
    def upstream(self) -> UpstreamState:
        """The model session's state (`upstream_link` owns its transitions)."""
        return self.link.state

    @property
    def ended(self) -> bool:
        return self.state is CallState.ENDED

    def begin(self, now: float) -> list[Action]:
        """The call exists (webhook answered): open the upstream session right away."""
        if not self.link.can("open") or self.ended:
            return []
        return [self.link.open()]

    @property
    def next_wakeup(self) -> float | None:
        """When the adapter must call `wake()` next (pacing and call timers), or None."""
        speech = self.speech  # read after every message: no call that is not needed
        at = self.timer_at
        paced = speech.paced_until
        if paced is not None and (speech.outbound or speech.comfort) and (
                at is None or paced < at):
            at = paced
        tick = self.model.next_tick
        if tick is not None and self.state is STREAMING:
            at = tick if at is None else min(tick, at)
        return at

    def wake(self, now: float) -> list[Action]:
        """A wake-up asked for by `next_wakeup` is due.
        After it, carry out the returned actions in order and re-read `next_wakeup`.
        """
        actions = self._tick(now) + self.pump(now) + conduct.on_due(self, now)
        actions += conduct.maybe_close(self, now)
        conduct.refresh_timers(self, now)
        return actions

    def _tick(self, now: float) -> list[Action]:
        """What time means to the model API (turns it infers, input that must keep flowing)."""
        if self.state is not CallState.STREAMING or self.model.next_tick is None:
            return []
        inputs, sends = self.model.tick(now)
        actions: list[Action] = list(sends) if self.link.state is UpstreamState.READY else []
        return actions + model_turns.apply(self, inputs, now)

    def accepts_upstream(self) -> bool:
        """Whether a socket that just opened is still wanted (the call may have ended or given
        up while the attempt was in flight); if not, the adapter closes it unreported."""
        return not self.ended and self.link.state is UpstreamState.OPENING

    # ------------------------------------------------------------------ upstream transport

    def upstream_opened(self, now: float) -> list[Action]:
        """The model's socket is open; its session's first event comes next.
        After it, carry out the returned actions in order and re-read `next_wakeup`.
        """
        if self.link.can("opened"):
            self.link.opened()
        actions = model_turns.apply(self, self.model.socket_opened(), now)
        conduct.refresh_timers(self, now)
        return actions

    def upstream_failed(self, now: float, reason: str) -> list[Action]:
        """Opening the model's socket failed.
        After it, carry out the returned actions in order and re-read `next_wakeup`.
        """
        return self.upstream_down(now, UpstreamConnectFailed(reason, self.link.retries))

    def upstream_lost(self, now: float, reason: str) -> list[Action]:
        """The model's socket closed or broke.
        After it, carry out the returned actions in order and re-read `next_wakeup`.
        """
        return self.upstream_down(now, UpstreamLost(reason, self.link.retries))

    def upstream_down(self, now: float,
                      report: UpstreamLost | UpstreamConnectFailed) -> list[Action]:
        """The session is gone: retry after the next backoff delay, or give up.
        After it, carry out the returned actions in order and re-read `next_wakeup`.
        """
        if self.ended or not self.link.live:
            return []
        self.speech.audio.caller_reset()
        self.reply.abandon()
        self.speech.abandon()
        retry = self.link.lost()
        if retry is None:
            return [report, *self.give_up(now, f"upstream unavailable: {report.reason}")]
        self.stats.reconnects += 1
        return [report, retry, *self.pump(now)]

    def give_up(self, now: float, reason: str) -> list[Action]:
        """No model session can be had: end the stream so Twilio plays the apology."""
        if self.link.can("give_up"):
            self.link.give_up()
        actions: list[Action] = [UpstreamGaveUp(reason), CloseUpstream(reason)]
        if self.state is CallState.STREAMING:
            actions += self.end_stream(reason)
        return actions

    def end_stream(self, reason: str) -> list[Action]:
        """Close the media socket: Twilio goes on with the TwiML after `</Connect>`."""
        self.state = CallState.ENDING
        self.end_reason = reason
        self.speech.outbound.drop()
        return [EndStream(reason)]

    # ------------------------------------------------------------------ Twilio side

    def receive_twilio(self, text: str | bytes, now: float) -> list[Action]:
        """One frame from the Twilio media socket. Malformed frames are counted and dropped."""
        try:
            message = tw.parse(text)
        except TwilioProtocolError as exc:
            self.stats.malformed_twilio += 1
            return sampled(MalformedTwilio, self.stats.malformed_twilio, exc)
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
            actions = conduct.on_dtmf(self, message.digit, now)
        conduct.refresh_timers(self, now)
        return actions

    def twilio_closed(self, now: float) -> list[Action]:
        """The media socket is gone (after `stop`, after our `EndStream`, or abruptly).
        After it, carry out the returned actions in order and re-read `next_wakeup`.
        """
        return self._end(now, self.end_reason or "media stream closed")

    def _on_media(self, media: tw.Media, now: float) -> list[Action]:
        self.stats.frames_in += 1
        speech = self.speech
        speech.media_ms = media.timestamp
        if self.state is not STREAMING:
            return []
        if speech.heard is not None:
            speech.heard.caller_frame(media.timestamp, media.payload)
        if self.link.caller_frame(media.payload, media.timestamp):
            return self.forward_caller(media.payload)
        return []

    def forward_caller(self, payload: str) -> list[Action]:
        """Caller audio to the model, in the session's format.
        After it, carry out the returned actions in order and re-read `next_wakeup`.
        """
        try:
            audio = self.speech.audio.caller_audio(payload)
        except (binascii.Error, ValueError) as exc:  # only the PCM16 path decodes it
            self.stats.malformed_twilio += 1
            return sampled(MalformedTwilio, self.stats.malformed_twilio, exc)
        if not audio:  # the resampler held the frame back; an empty append is only noise
            return []
        return [self.model.append_audio(audio)]

    def _on_start(self, start: tw.Start, now: float) -> list[Action]:
        if self.state is not CallState.CONNECTING:
            return [Note("duplicate_start", {"stream_sid": start.stream_sid})]
        if start.call_sid != self.call_sid or not _SID.match(start.stream_sid):
            return self.end_stream("stream does not belong to this call")
        self.state = CallState.STREAMING
        self.stream_sid = start.stream_sid
        if self.link.state is UpstreamState.FAILED:
            return self.end_stream("upstream unavailable")
        self.deadlines.start(now)
        if self.awaiting_answer:
            self.deadlines.answer_by = now + ANSWER_TIMEOUT_S
        actions: list[Action] = [StreamStarted(start.stream_sid)]
        if self.profile.record:
            actions.append(StartRecording())
        actions += conduct.greet_at_start(self)
        return actions + self.pump(now)

    def _on_mark(self, echo: tw.MarkEcho, now: float) -> list[Action]:
        result = self.speech.echoed(echo.name, now)
        if result is Echo.STALE:
            self.stats.stale_marks += 1
            return []
        if result is Echo.UNKNOWN:
            return []
        actions = self.turns.latency(self.speech.media_ms) + self.finish_played(now)
        return actions + self.pump(now) + conduct.maybe_close(self, now)

    def _end(self, now: float, reason: str) -> list[Action]:
        if self.ended:
            return []
        self.state = CallState.ENDED
        self.end_reason = self.end_reason or reason
        actions = model_turns.apply(self, self.model.finish(now), now)  # usage not yet reported
        actions += self.speech.end(now)
        self.tools_running.clear()
        if self.link.live:
            actions.append(conduct.close_upstream(self, self.end_reason))
        self.link.close()
        actions.append(Note("call_ended", {"reason": self.end_reason}))
        heard = self.speech.heard
        if heard is not None and heard.seconds() > 0:
            actions.append(SaveRecording(bytes(heard.caller), bytes(heard.agent)))
        return actions

    # ------------------------------------------------------------------ playback

    def pump(self, now: float) -> list[Action]:
        """Release agent audio (or the comfort sound) to Twilio, paced."""
        if self.state is not CallState.STREAMING:
            self.speech.paced_until = None
            return []
        assert self.stream_sid is not None  # STREAMING implies start was received
        return self.speech.pump(now, self.stream_sid, self._dead_air)

    def finish_played(self, now: float) -> list[Action]:
        turns, quiet = self.speech.finish_played(now)
        if quiet:
            self.deadlines.agent_quiet_at = now
        return turns

    def heard_ms(self, item_id: str) -> int:
        """Ms of an agent item the caller has heard (mark-confirmed)."""
        return self.speech.playback.heard_ms(item_id)

    # ------------------------------------------------------------------ the model's side

    def receive_realtime(self, text: str | bytes, now: float) -> list[Action]:
        """One server event from the model's socket (any API: the protocol object behind
        `model` reads it). Malformed events are counted and dropped."""
        if self.state is ENDED:
            return []
        self.link.heard_at = now
        try:
            inputs = self.model.receive(text, now)
        except ProtocolError as exc:
            self.stats.malformed_realtime += 1
            return sampled(MalformedModel, self.stats.malformed_realtime, exc)
        if not inputs:
            return []
        if len(inputs) == 1:  # nearly every event: one input, no list to build
            event = inputs[0]
            actions = model_turns.HANDLERS[type(event)](self, event, now)
        else:
            actions = model_turns.apply(self, inputs, now)
        conduct.refresh_timers(self, now)
        return actions

    receive_model = receive_realtime

    # ------------------------------------------------------------------ call control

    def tool_result(self, call_id: str, output: str, now: float) -> list[Action]:
        """A tool finished. Results for an ended call or an unknown call are dropped here.
        After it, carry out the returned actions in order and re-read `next_wakeup`.
        """
        if self.ended or call_id not in self.tools_running:
            return [Note("tool_result_dropped", {"call_id": call_id})]
        self.tools_running.discard(call_id)
        self.deadlines.fillers.pop(call_id, None)
        conduct.add_output(self, call_id, output)
        actions = conduct.flush(self)
        conduct.refresh_timers(self, now)
        return actions

    def wrap_up(self, now: float, reason: str) -> list[Action]:
        """End the call soon: the agent says a closing line, then HangUp once it has played.
        After it, carry out the returned actions in order and re-read `next_wakeup`.
        """
        actions = conduct.wrap_up(self, now, reason, "We need to end this call now. Apologise "
                                  "briefly, say goodbye, and do not ask anything more.")
        conduct.refresh_timers(self, now)
        return actions

    def answered_by(self, kind: str, now: float) -> list[Action]:
        """Answering-machine detection's verdict on an outbound call.
        After it, carry out the returned actions in order and re-read `next_wakeup`.
        """
        actions = conduct.answered_by(self, kind, now)
        conduct.refresh_timers(self, now)
        return actions

    def control_failed(self, request: CallControl, error: str, now: float) -> list[Action]:
        """Twilio's REST API could not carry out a `HangUp`, `RedirectCall` or
        `StartRecording` (or there is no REST client): the session decides what follows.
        After it, carry out the returned actions in order and re-read `next_wakeup`.
        After it, carry out the returned actions in order and re-read `next_wakeup`.
        """
        actions = conduct.control_failed(self, request, error, now)
        conduct.refresh_timers(self, now)
        return actions
