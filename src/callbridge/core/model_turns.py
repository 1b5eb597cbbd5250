"""How a call answers each input from the model (any API, through the seam in `model`):
configuration confirmed or refused, errors, barge-in when the caller's speech starts, the
caller's turn ending and its transcript, agent audio and text, tool calls, replies done (usage,
cost and the cost cap). Plain functions over the session's public parts, one per input, with the
dispatch table (`HANDLERS`) at the bottom. No I/O. No clock.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from callbridge.core import conduct
from callbridge.core import model as m
from callbridge.core.actions import Action, Note, RunTool, TurnFinished, sampled
from callbridge.core.builtin_tools import BUILTINS, enabled_builtins
from callbridge.core.reports import (
    BargeIn,
    CostCapReached,
    MalformedModel,
    ReplyUsage,
    TurnLatency,
)

if TYPE_CHECKING:
    from callbridge.core.session import CallSession


@dataclass(slots=True)
class TurnTiming:
    """When the caller's turns started and ended, for turn latency and transcript times."""

    speech_started_at: dict[str, float] = field(default_factory=dict)
    speech_stopped_at: float | None = None  # awaiting the reply's first delta
    speech_end_media: int | None = None  # awaiting the reply's first played mark
    model_ms: int | None = None
    format_retried: bool = False

    def latency(self, media_ms: int) -> list[Action]:
        """On the first played mark after the caller stopped: how long they waited, in media
        time (the end of their speech by the VAD, to agent audio Twilio confirmed playing)."""
        if self.speech_end_media is None:
            return []
        waited = media_ms - self.speech_end_media
        self.speech_end_media = None
        return [TurnLatency(max(0, waited), self.model_ms)]


def on_opened(s: CallSession, event: m.SessionOpened, now: float) -> list[Action]:
    if s.link.can("created"):
        s.link.created()
    return conduct.configure(s)


def on_configured(s: CallSession, event: m.Configured, now: float) -> list[Action]:
    if not event.accepted:
        note = Note("audio_format_mismatch", event.detail)
        if s.turns.format_retried:
            return [note, *s.give_up(now, "upstream refused μ-law audio")]
        s.turns.format_retried = True
        return [note, *conduct.configure(s)]
    if not s.link.can("ready"):  # a second confirmation of a ready session
        return []
    actions = conduct.on_ready(s, now)
    if event.expires_at is not None:
        conduct.recycle_before_expiry(s, event.expires_at, now)
    return actions


def on_error(s: CallSession, event: m.ModelError, now: float) -> list[Action]:
    kind = event.kind
    if kind is m.ErrorKind.HARMLESS:
        return []
    if kind is m.ErrorKind.CONFLICT:
        if s.reply.can("refused"):
            s.reply.refused()
        return [Note("response_conflict", event.detail)]
    if kind is m.ErrorKind.FATAL:
        return s.give_up(now, f"upstream error {event.detail['code']}")
    if kind is m.ErrorKind.CUT_REFUSED:
        s.stats.truncate_errors += 1
        return [Note("truncate_rejected", event.detail)]
    s.stats.upstream_errors += 1
    return [Note("upstream_error", event.detail)]


def on_speech_started(s: CallSession, event: m.CallerSpeechStarted, now: float) -> list[Action]:
    """Barge-in: the caller talks over the agent."""
    s.turns.speech_started_at[event.item_id] = now
    s.caller_speaking = True
    s.deadlines.caller_active(now)
    speech = s.speech
    if not (speech.audible or s.reply.active is not None or speech.items):
        return speech.stop_comfort(now, s.stream_sid) if speech.comfort else []
    s.stats.barge_ins += 1
    origin = s.link.origin_ms
    reaction = (None if origin is None  # speech start → clear, in media time
                else max(0, speech.media_ms - (origin + event.audio_start_ms)))
    actions: list[Action] = [BargeIn(event.item_id, reaction)]
    actions += speech.interrupt(now, s.stream_sid, s.model)
    stopped = s.reply.suppress_active()
    if stopped is not None:
        actions += s.model.stop_reply(stopped, s.profile)
    return actions


def on_speech_stopped(s: CallSession, event: m.CallerSpeechStopped, now: float) -> list[Action]:
    s.history.reserve_caller_turn(event.item_id)
    s.link.turn_committed()  # the caller's turn is the session's now
    # A turn whose end was inferred after the fact (it owes no reply) cannot time the model.
    s.turns.speech_stopped_at = now if event.owes_reply else None
    s.turns.model_ms = None
    origin = s.link.origin_ms
    s.turns.speech_end_media = None if origin is None else origin + event.audio_end_ms
    if event.owes_reply:
        s.reply.turn_ended()
    s.caller_speaking = False
    s.deadlines.caller_active(now)
    return []


def on_caller_transcript(s: CallSession, event: m.CallerTranscript, now: float) -> list[Action]:
    s.history.caller_said(event.item_id, event.text)
    started = s.turns.speech_started_at.pop(event.item_id, None)
    if started is None:
        started = now if event.started_at is None else min(event.started_at, now)
    return [TurnFinished("caller", event.text, event.text, False, event.item_id, now,
                         started)]


def on_reply_started(s: CallSession, event: m.ReplyStarted, now: float) -> list[Action]:
    s.reply.started(event.reply_id)
    return []


def on_agent_audio(s: CallSession, event: m.AgentAudio, now: float) -> list[Action]:
    item = s.speech.live_item(event.reply_id, event.item_id, s.reply.suppressed)
    if item is None:
        s.stats.late_deltas_dropped += 1
        return []
    try:
        audio = base64.b64decode(event.payload, validate=True)
    except binascii.Error as exc:
        s.stats.malformed_realtime += 1
        return sampled(MalformedModel, s.stats.malformed_realtime, exc)
    stop = s.speech.stop_comfort(now, s.stream_sid) if s.speech.comfort else []
    s.speech.received(event.item_id, event.part, audio)
    s.reply.spoke.add(event.reply_id)
    if s.turns.speech_stopped_at is not None:  # the model's share of the turn
        s.turns.model_ms = round((now - s.turns.speech_stopped_at) * 1000)
        s.turns.speech_stopped_at = None
    return stop + s.pump(now)


def on_agent_audio_paused(s: CallSession, event: m.AgentAudioPaused,
                          now: float) -> list[Action]:
    if event.item_id not in s.speech.items:
        return []
    s.speech.outbound.pad(event.item_id)
    return s.pump(now)


def on_agent_audio_done(s: CallSession, event: m.AgentAudioDone, now: float) -> list[Action]:
    item = s.speech.items.get(event.item_id)
    if item is None:
        return []
    item.talked_over = event.talked_over
    s.speech.audio_done(event.item_id, item)
    return s.pump(now) + s.finish_played(now) + conduct.maybe_close(s, now)


def on_agent_text(s: CallSession, event: m.AgentText, now: float) -> list[Action]:
    item = s.speech.live_item(event.reply_id, event.item_id, s.reply.suppressed)
    if item is not None:
        item.text.append(event.text)
    return []


def on_agent_text_done(s: CallSession, event: m.AgentTextDone, now: float) -> list[Action]:
    item = s.speech.items.get(event.item_id)
    if item is not None:
        item.final_text = event.text
    return s.finish_played(now)


def on_tool_call(s: CallSession, event: m.ToolCallRequested, now: float) -> list[Action]:
    if event.call_id in s.tool_names or event.reply_id in s.reply.suppressed:
        return []
    s.tool_names[event.call_id] = event.name
    s.history.tool_called(event.call_id, event.name, event.arguments)
    builtin = BUILTINS.get(event.name)
    if builtin is not None and event.name in enabled_builtins(s.profile):
        return builtin(s, event, now)
    s.tools_running.add(event.call_id)
    if s.profile.filler_after_s > 0:
        s.deadlines.fillers[event.call_id] = now + s.profile.filler_after_s
    return [RunTool(event.call_id, event.name, event.arguments)]


def on_reply_done(s: CallSession, event: m.ReplyDone, now: float) -> list[Action]:
    s.reply.finished(event.reply_id)
    s.speech.reply_done(event.reply_id)
    actions = (account(s, event.reply_id, event.status, event.reason, event.usage, now)
               if event.usage else [])  # a reply inferred from time has no usage of its own
    if event.reply_id not in s.reply.spoke and not s.speech.items:
        s.deadlines.agent_quiet_at = now
    actions += conduct.flush(s)
    return (actions + s.pump(now) + s.finish_played(now)
            + conduct.maybe_close(s, now))


def on_usage(s: CallSession, event: m.UsageReported, now: float) -> list[Action]:
    return account(s, event.source, "completed", None, event.usage, now)


def account(s: CallSession, reply_id: str, status: str, reason: str | None,
            usage: dict[str, Any], now: float) -> list[Action]:
    """Count usage and its cost (computed once, by the model's protocol object) and enforce
    the cost cap."""
    add_usage(s.stats.usage, usage)
    cost = s.model.cost(s.profile, usage)
    s.cost_usd += cost
    actions: list[Action] = [ReplyUsage(reply_id, status, reason, usage, cost)]
    cap = s.profile.cost_cap_usd
    if (cap is not None and s.cost_usd >= cap and s.ending.can("announce")
            and not s.ended):
        actions.append(CostCapReached(round(s.cost_usd, 4)))
        actions += conduct.wrap_up(s, now, "cost cap reached",
                                   "You must end the call now. Apologise briefly and say "
                                   "goodbye.")
    return actions


def add_usage(total: dict[str, int], usage: dict[str, object], prefix: str = "") -> None:
    for key, value in usage.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            total[prefix + key] = total.get(prefix + key, 0) + value
        elif isinstance(value, dict):
            add_usage(total, value, f"{prefix}{key}.")


def apply(s: CallSession, inputs: Sequence[m.ModelInput], now: float) -> list[Action]:
    """Each input's handler, in order."""
    return [action for event in inputs for action in HANDLERS[type(event)](s, event, now)]


_Handler = Callable[["CallSession", Any, float], list[Action]]
HANDLERS: dict[type, _Handler] = {
    # one handler per model input: the session dispatches on the input's type
    m.SessionOpened: on_opened,
    m.Configured: on_configured,
    m.ModelError: on_error,
    m.CallerSpeechStarted: on_speech_started,
    m.CallerSpeechStopped: on_speech_stopped,
    m.CallerTranscript: on_caller_transcript,
    m.ReplyStarted: on_reply_started,
    m.AgentAudio: on_agent_audio,
    m.AgentAudioPaused: on_agent_audio_paused,
    m.AgentAudioDone: on_agent_audio_done,
    m.AgentText: on_agent_text,
    m.AgentTextDone: on_agent_text_done,
    m.ToolCallRequested: on_tool_call,
    m.ReplyDone: on_reply_done,
    m.UsageReported: on_usage,
}
