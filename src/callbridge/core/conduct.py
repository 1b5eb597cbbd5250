"""Call control: what the call does besides carrying audio — the items and the one reply that
follow tool results, hand-offs, wrapping up and hanging up only once the last words have played,
keypad digits, holding lines for slow tools, idle callers, time limits, answering-machine
verdicts, recycling the model session, the stall watch, and what to do when Twilio's REST API
could not carry out a hang-up, transfer or recording.

Plain functions over the session's public parts (its machines, timers and model seam); the
session calls them and keeps the order of the actions. No I/O. No clock.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from callbridge.core.actions import (
    Action,
    CallControl,
    CloseUpstream,
    HangUp,
    Note,
    RedirectCall,
    StartRecording,
)
from callbridge.core.agent import instructed, say_exactly
from callbridge.core.control import MACHINE_ANSWERS, Due
from callbridge.core.ending import CLOSED, OPEN, Closing, Ending
from callbridge.core.reply import Followup, Reply
from callbridge.core.reports import UpstreamLost, UpstreamStalled
from callbridge.core.states import READY, STREAMING, CallState, UpstreamState
from callbridge.core.upstream_link import Opening

if TYPE_CHECKING:
    from callbridge.core.session import CallSession

EXPIRY_MARGIN_S = 300.0  # the most a recycle is planned before a session's stated expiry

# ------------------------------------------------------------------ what the call waits on

def reply_owed(s: CallSession) -> bool:
    """The model owes the caller a reply: their turn ended or we asked for a response, and
    neither a tool of ours, the caller nor an answering-machine verdict is what it waits on."""
    return (s.link.state is READY and not s.awaiting_answer
            and not s.caller_speaking and not s.tools_running and s.reply.owed)


def idle_possible(s: CallSession) -> bool:
    """Nobody is talking and nothing is under way: silence now counts as the caller's."""
    return (s.link.state is READY and s.ending.state is OPEN
            and not s.awaiting_answer and not s.reply.busy and not s.caller_speaking
            and not s.tools_running and not s.speech.outbound
            and not s.speech.playback.awaiting_echo())


def dead_air(s: CallSession) -> bool:
    """The caller would hear nothing: a tool runs past its holding line, or a lost model
    session is being replaced (the comfort sound plays then)."""
    if s.ending.state is not Ending.OPEN:
        return False
    waiting_on_tool = (bool(s.tools_running) and not s.deadlines.fillers
                       and not s.reply.busy)
    return waiting_on_tool or s.link.reconnecting


def refresh_timers(s: CallSession, now: float) -> None:
    """Recompute the next call-timer deadline (not on the media path: only after events)."""
    if s.state is not STREAMING or s.ending.state is CLOSED:
        s.timer_at = None
        return
    s.deadlines.upstream_by = s.link.watch(now, reply_owed(s))
    s.timer_at = s.deadlines.next_at(idle_possible=idle_possible(s))


# ------------------------------------------------------------------ the model's session

def close_upstream(s: CallSession, reason: str) -> CloseUpstream:
    """Close the model's session on purpose, as gracefully as its API asks."""
    farewell, drain_s = s.model.farewell()
    return CloseUpstream(reason, tuple(farewell), drain_s)


def configure(s: CallSession) -> list[Action]:
    history = s.history if s.link.ever_ready else None  # a replacing session: the conversation
    return list(s.model.configure(s.profile, answer_turns=not s.awaiting_answer,
                                  history=history))


def on_ready(s: CallSession, now: float) -> list[Action]:
    """The model's session is ready: greet (the first one) or restore the conversation and
    resume the reply that was owed (a replacement), then give it the waiting caller audio."""
    restored = s.link.ready()
    s.deadlines.recycle_at = now + s.timing.recycle_after_s
    actions: list[Action] = []
    if restored:
        items = s.model.restore(s.history, s.timing.history_items, s.timing.history_chars)
        actions.append(Note("upstream_restored", {"items": len(items)}))
        s.reply.waiting.clear()  # already in the history just restored
        actions += items
        if s.reply.resume or s.history.last_is_caller():
            actions += request_reply(s, None)
    else:
        actions.append(Note("upstream_ready"))
        greeting = s.profile.greeting_response()
        early = s.timing.greet_before_start or s.state is CallState.STREAMING
        if greeting is not None and not s.awaiting_answer and early:
            actions += request_reply(s, greeting)
    s.reply.resume = False
    if s.state is CallState.STREAMING:
        for payload in s.link.take_backlog(s.speech.media_ms):
            actions += s.forward_caller(payload)
    else:
        s.link.drop_backlog()
    return actions + flush(s)


def greet_at_start(s: CallSession) -> list[Action]:
    """Twilio's `start` arrived: greet now if the greeting waited for it (`Timing`'s
    `greet_before_start` off) and the first session is already ready."""
    greeting = s.profile.greeting_response()
    if (s.timing.greet_before_start or greeting is None or s.awaiting_answer
            or s.link.state is not UpstreamState.READY or not s.reply.can("request")):
        return []
    return request_reply(s, greeting)


def recycle(s: CallSession) -> list[Action]:
    """Replace the model session before its cap, at a quiet turn boundary: the caller's audio
    waits in the backlog for the new session, which gets the conversation."""
    s.deadlines.recycle_at = None
    s.speech.audio.caller_reset()
    return [Note("upstream_recycle"), close_upstream(s, "session recycle"),
            s.link.replace(Opening.RECYCLE)]


def recycle_before_expiry(s: CallSession, expires_at: float, now: float) -> None:
    """The model's session ends by itself at `expires_at` (Unix time): plan the recycle at a
    quiet moment before it — a fifth of the session's life or five minutes early, whichever
    is less — unless one is planned sooner. Needs the adapter's `wall_offset`."""
    if s.wall_offset is None:
        return
    remaining = expires_at - s.wall_offset - now
    at = now + max(0.0, remaining - min(EXPIRY_MARGIN_S, remaining / 5))
    if s.deadlines.recycle_at is None or at < s.deadlines.recycle_at:
        s.deadlines.recycle_at = at


def upstream_stalled(s: CallSession, now: float) -> list[Action]:
    """No model event while a reply was owed: treat the socket as lost (reconnect, with the
    comfort sound meanwhile, and resume the reply on the new session)."""
    s.deadlines.upstream_by = None
    silent_s = s.link.stalled(now)
    reason = f"no upstream event for {silent_s:g} s while a reply was owed"
    return [UpstreamStalled(silent_s), CloseUpstream(reason),
            *s.upstream_down(now, UpstreamLost(reason, s.link.retries))]


def switch_now(s: CallSession, name: str) -> list[Action]:
    """Hand the call to agent `name` (its tool outputs already sent): reconfigure the model,
    or open a fresh session when the model cannot take the change in place."""
    old = s.profile
    new = replace(s.agents[name], audio_format=old.audio_format)  # fixed per call
    s.profile = new
    s.deadlines.profile = new
    s.pending_switch = None
    note = Note("agent_switched", {"from": old.name, "to": name})
    if s.model.needs_new_session(old, new, bool(s.reply.spoke)):
        s.reply.resume = True
        s.speech.audio.caller_reset()
        return [note, close_upstream(s, f"switching to agent {name}"),
                s.link.replace(Opening.RECONNECT)]
    return [note, *configure(s)]


# ------------------------------------------------------------------ replies

def request_reply(s: CallSession, body: dict[str, Any] | None) -> list[Action]:
    s.reply.request()
    return list(s.model.ask_reply(body))


def add_output(s: CallSession, call_id: str, output: str) -> None:
    s.history.tool_returned(call_id, output)
    s.reply.waiting.append(s.model.tool_output(call_id, output))


def flush(s: CallSession) -> list[Action]:
    """Send waiting items (tool outputs, keypad digits), then one reply request — once no tool
    is running, no reply is asked for or under way, and the model's session is ready."""
    reply = s.reply
    if not reply.wanted:
        return []
    if s.tools_running or reply.busy or s.link.state is not UpstreamState.READY:
        return []  # waiting; on a reconnect they go with the restored history
    actions: list[Action] = list(reply.waiting)
    reply.waiting.clear()
    if s.pending_switch is not None:
        switch = switch_now(s, s.pending_switch)
        actions += switch
        if any(isinstance(a, CloseUpstream) for a in switch):
            reply.clear_followup()
            return actions  # the new session resumes the conversation itself
    if reply.followup is not Followup.SILENT:
        actions += request_reply(s, reply.followup_body)
    reply.clear_followup()
    return actions


def want_reply(s: CallSession, body: dict[str, Any] | None) -> list[Action]:
    """Have the agent speak (with one-off instructions) as soon as nothing else is."""
    s.reply.want(body)
    return flush(s)


# ------------------------------------------------------------------ ending the call

def wrap_up(s: CallSession, now: float, reason: str, instructions: str) -> list[Action]:
    """The agent says a closing line, then the call hangs up once it has been heard."""
    if not s.ending.can("announce"):
        return []
    s.ending.announce(HangUp(reason), now)
    return want_reply(s, instructed(instructions, "wrap_up")) + maybe_close(s, now)


def maybe_close(s: CallSession, now: float) -> list[Action]:
    """Carry out the pending hang-up or transfer once the caller has heard everything."""
    if s.ending.state is not Ending.CLOSING or s.state is not CallState.STREAMING:
        return []
    if (s.reply.busy or s.reply.wanted or s.speech.outbound
            or s.speech.playback.awaiting_echo()):
        return []
    return close(s)


def close(s: CallSession, closing: Closing | None = None) -> list[Action]:
    if not s.ending.can("close_now"):
        return []
    action = s.ending.close_now(closing)
    s.end_reason = action.reason
    return [action]


def hang_up_now(s: CallSession, reason: str) -> list[Action]:
    return close(s, HangUp(reason))


def control_failed(s: CallSession, request: CallControl, error: str,
                   now: float) -> list[Action]:
    """Twilio could not carry out `request`. A recording that did not start changes nothing;
    a refused transfer reopens the call and the agent tells the caller; a hang-up that failed
    ends the media stream, so Twilio plays what follows `</Connect>` and hangs up."""
    note = Note("call_control_failed", {"action": type(request).__name__, "error": error})
    if isinstance(request, StartRecording) or s.state is not CallState.STREAMING:
        return [note]
    if isinstance(request, RedirectCall) and s.ending.can("reopen"):
        s.ending.reopen()
        s.end_reason = None
        return [note, *want_reply(s, instructed(
            "The transfer did not go through. Tell the caller so briefly and offer to help "
            "further.", "transfer_failed"))]
    return [note, *s.end_stream(f"hang-up failed: {error}")]


def answered_by(s: CallSession, kind: str, now: float) -> list[Action]:
    """Answering-machine detection's verdict on an outbound call."""
    note = Note("answered_by", {"kind": kind})
    if not s.awaiting_answer:
        return [note]
    s.awaiting_answer = False
    s.deadlines.answer_by = None
    if kind in MACHINE_ANSWERS:
        if kind == "fax" or not s.profile.voicemail_message:
            return [note, *hang_up_now(s, f"answered by {kind}")]
        if s.ending.can("announce"):
            s.ending.announce(HangUp("left a voicemail"), now)
        return [note, *want_reply(s, say_exactly(s.profile.voicemail_message, "voicemail"))]
    actions: list[Action] = [note]
    if s.link.state is UpstreamState.READY:
        actions += configure(s)
    greeting = s.profile.greeting_response()
    if greeting is not None:
        actions += want_reply(s, greeting)
    elif s.reply.state in (Reply.OWED, Reply.ACTIVE_OWED) or s.history.last_is_caller():
        actions += want_reply(s, None)
    return actions


# ------------------------------------------------------------------ timers

def on_due(s: CallSession, now: float) -> list[Action]:
    if s.state is not CallState.STREAMING or s.ending.state is Ending.CLOSED:
        return []
    actions: list[Action] = []
    deadlines = s.deadlines
    for due in dict.fromkeys(deadlines.due(now, idle_possible=idle_possible(s))):
        if due is Due.DTMF_FLUSH:
            actions += flush_keypad(s)
        elif due is Due.FILLER:
            actions += say_fillers(s, now)
        elif due is Due.RECYCLE:
            actions += recycle(s)
        elif due is Due.UPSTREAM_STALL:
            actions += upstream_stalled(s, now)
        elif due is Due.ANSWER_TIMEOUT:
            deadlines.answer_by = None
            actions += [Note("answer_timeout"), *s.answered_by("unknown", now)]
        elif due is Due.CLOSE_ANYWAY:
            actions += [Note("closing_without_confirmation"), *close(s)]
        elif due is Due.DURATION_WARNING:
            deadlines.warned = True
            actions += system_note(s, "The call must end in about a minute. Start wrapping "
                                      "up politely.")
        elif due is Due.DURATION_WRAP_UP:
            deadlines.wrapped_up = True
            actions += wrap_up(s, now, "maximum call length reached",
                               "The call has reached its time limit. Tell the caller politely "
                               "and say goodbye.")
        elif due is Due.DURATION_LIMIT:
            actions += hang_up_now(s, "maximum call length reached")
        elif due is Due.IDLE_PROMPT:
            deadlines.idle_prompted = True
            actions += [Note("idle_prompt"), *want_reply(s, instructed(
                "The caller has been silent for a while. Ask briefly whether they are still "
                "there.", "idle_prompt"))]
        elif due is Due.IDLE_HANGUP:
            actions += wrap_up(s, now, "caller silent",
                               "The caller seems to have gone. Say a brief goodbye.")
    return actions


def say_fillers(s: CallSession, now: float) -> list[Action]:
    due = [cid for cid, at in s.deadlines.fillers.items() if at <= now]
    for call_id in due:
        del s.deadlines.fillers[call_id]
    if s.reply.busy or s.speech.outbound:
        return []  # the agent is already talking: no dead air to fill
    name = s.tool_names.get(due[0], "") if due else ""
    line = s.profile.tool_fillers.get(name) or "One moment while I check that."
    return [Note("tool_filler", {"tool": name}), *request_reply(s, say_exactly(line, "filler"))]


def system_note(s: CallSession, text: str) -> list[Action]:
    """A note for the model: sent now when its session is ready, and kept in the history, so a
    replacing session (a reconnect, a recycle) is given it with the conversation."""
    s.history.noted(text)
    if s.link.state is not UpstreamState.READY:
        return []
    return [s.model.system_note(text)]


# ------------------------------------------------------------------ keypad

def on_dtmf(s: CallSession, digit: str, now: float) -> list[Action]:
    """Keypad digits reach the model as the caller's words: at the terminator or a pause."""
    note = Note("dtmf", {"digit": digit})
    s.deadlines.caller_active(now)
    if digit == s.profile.dtmf_terminator:
        return [note, *flush_keypad(s)]
    s.keypad.append(digit)
    s.deadlines.dtmf_at = now + s.profile.dtmf_pause_s
    return [note]


def flush_keypad(s: CallSession) -> list[Action]:
    digits = "".join(s.keypad)
    s.keypad.clear()
    s.deadlines.dtmf_at = None
    if not digits:
        return []
    s.keypad_turns += 1
    text = f"(The caller pressed these keys on the phone keypad: {digits})"
    s.history.caller_said(f"dtmf:{s.keypad_turns}", text)
    s.reply.waiting.append(s.model.caller_text(text))
    return want_reply(s, None)
