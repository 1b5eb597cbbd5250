"""Call control, the half of `CallSession` that decides what the call does besides carrying
audio: tool results and the one `response.create` that follows them, the built-in tools
(`end_call`, `transfer_call`, `switch_agent`), hanging up or transferring only once the caller has
heard the last words, keypad digits, holding lines for slow tools, idle callers, time and cost
limits, and answering-machine verdicts on outbound calls.

`CallControl` is a base class of `CallSession`: it owns these methods and the state they use;
the session owns the protocol state machine. No I/O. No clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from callbridge.core import realtime_events as rt
from callbridge.core import twilio_messages as tw
from callbridge.core.actions import (
    Action,
    CloseUpstream,
    HangUp,
    Note,
    OpenUpstream,
    RedirectCall,
    SendRealtime,
)
from callbridge.core.agent import AgentProfile, instructed, say_exactly
from callbridge.core.audio_path import AudioPath
from callbridge.core.control import MACHINE_ANSWERS, Deadlines, Due, transfer_twiml
from callbridge.core.history import ConversationHistory
from callbridge.core.outbound import OutboundAudio
from callbridge.core.playback import PlaybackTracker
from callbridge.core.states import CallState, UpstreamState

ANSWER_TIMEOUT_S = 35.0  # async AMD answers within 30 s; a verdict lost elsewhere must not mute us
CLOSE_GRACE_S = 20.0  # a last line that never finishes playing does not hold the call open


class CallControl:
    """Call-control decisions; mixed into `CallSession`, which creates all of this state."""

    profile: AgentProfile
    state: CallState
    upstream: UpstreamState
    history: ConversationHistory
    end_reason: str | None
    _playback: PlaybackTracker
    _outbound: OutboundAudio
    _deadlines: Deadlines
    _agents: dict[str, AgentProfile]
    _awaiting_answer: bool
    _awaiting_reply: bool
    _active_response: str | None
    _response_requested: bool
    _resume_after_reconnect: bool
    _tools_running: set[str]
    _tool_names: dict[str, str]
    _pending_items: list[rt.CreateItem]
    _followup: dict[str, Any] | None
    _followup_wanted: bool
    _no_followup: bool
    _pending_switch: str | None
    _closing: HangUp | RedirectCall | None
    _closed: bool
    _response_audio: set[str]
    _caller_speaking: bool
    _recycling: bool
    _audio_origin_ms: int | None
    _audio: AudioPath
    _timer_at: float | None
    _dtmf: list[str]
    _dtmf_turns: int
    _upstream_stall_s: float | None
    _upstream_heard_at: float
    _owed_since: float | None
    _upstream_down: Callable[[float, str, str], list[Action]]

    def _carry_unanswered_over(self) -> None: ...

    def _refresh_timers(self, now: float) -> None:
        """Recompute the next call-timer deadline (not on the media path: only after events)."""
        if self.state is not CallState.STREAMING or self._closed:
            self._timer_at = None
            return
        self._watch_upstream(now)
        self._timer_at = self._deadlines.next_at(idle_possible=self._idle_possible())

    def _watch_upstream(self, now: float) -> None:
        """While a reply is owed, the upstream must say something every `upstream_stall_s`
        (counted from the later of its last event and the moment the reply became owed)."""
        limit = self._upstream_stall_s
        if limit is None or not self._reply_owed():
            self._owed_since = None
            self._deadlines.upstream_by = None
            return
        if self._owed_since is None:
            self._owed_since = now
        self._deadlines.upstream_by = max(self._owed_since, self._upstream_heard_at) + limit

    def _reply_owed(self) -> bool:
        """The model owes the caller a reply: their turn ended or we asked for a response, and
        neither a tool of ours, the caller nor an answering-machine verdict is what it waits on."""
        return (self.upstream is UpstreamState.READY and not self._awaiting_answer
                and not self._caller_speaking and not self._tools_running
                and (self._awaiting_reply or self._response_requested
                     or self._active_response is not None))

    def _upstream_stalled(self, now: float) -> list[Action]:
        """No upstream event while a reply was owed: treat the socket as lost (reconnect, with
        the comfort sound meanwhile, and resume the reply on the new session)."""
        self._deadlines.upstream_by = None
        self._owed_since = None
        silent_s = round(now - self._upstream_heard_at, 3)
        reason = f"no upstream event for {silent_s:g} s while a reply was owed"
        return [Note("upstream_stalled", {"silent_s": silent_s}), CloseUpstream(reason),
                *self._upstream_down(now, "upstream_lost", reason)]

    def _idle_possible(self) -> bool:
        """Nobody is talking and nothing is under way: silence now counts as the caller's."""
        return (self.upstream is UpstreamState.READY and self._closing is None
                and not self._awaiting_answer and self._active_response is None
                and not self._response_requested and not self._caller_speaking
                and not self._tools_running and not self._outbound
                and not self._playback.awaiting_echo())

    def _session_update(self) -> SendRealtime:
        return SendRealtime(rt.SessionUpdate(
            self.profile.session(create_response=not self._awaiting_answer)))

    def _request_response(self, response: dict[str, Any] | None) -> SendRealtime:
        self._response_requested = True
        return SendRealtime(rt.CreateResponse(response))

    def tool_result(self, call_id: str, output: str, now: float) -> list[Action]:
        """A tool finished. Results for an ended call or an unknown call are dropped here."""
        if self.state is CallState.ENDED or call_id not in self._tools_running:
            return [Note("tool_result_dropped", {"call_id": call_id})]
        self._tools_running.discard(call_id)
        self._deadlines.fillers.pop(call_id, None)
        self._add_output(call_id, output)
        actions = self._flush_pending()
        self._refresh_timers(now)
        return actions

    def _add_output(self, call_id: str, output: str) -> None:
        self.history.tool_returned(call_id, output)
        item = {"type": "function_call_output", "call_id": call_id, "output": output}
        self._pending_items.append(rt.CreateItem(item))

    def _flush_pending(self) -> list[Action]:
        """Send waiting items (tool outputs, keypad digits), then one `response.create` — once
        no tool is running and no response is active or requested."""
        if not (self._pending_items or self._followup_wanted):
            return []
        if (self._tools_running or self._active_response is not None
                or self._response_requested or self.upstream is not UpstreamState.READY):
            return []  # waiting; on a reconnect they go with the restored history
        actions: list[Action] = [SendRealtime(event) for event in self._pending_items]
        self._pending_items.clear()
        if self._pending_switch is not None:
            switch = self._switch_agent(self._pending_switch)
            actions += switch
            if any(isinstance(a, CloseUpstream) for a in switch):
                self._followup, self._followup_wanted, self._no_followup = None, False, False
                return actions  # the new session resumes the conversation itself
        if not self._no_followup:
            actions.append(self._request_response(self._followup))
        self._followup, self._followup_wanted, self._no_followup = None, False, False
        return actions

    def _want_response(self, body: dict[str, Any] | None) -> list[Action]:
        """Have the agent speak (with one-off instructions) as soon as nothing else is."""
        self._followup = body
        self._followup_wanted = True
        return self._flush_pending()

    # ------------------------------------------------------------------ call control

    def wrap_up(self, now: float, reason: str) -> list[Action]:
        """End the call soon: the agent says a closing line, then HangUp once it has played."""
        actions = self._wrap_up(now, HangUp(reason), "We need to end this call now. Apologise "
                                "briefly, say goodbye, and do not ask anything more.")
        self._refresh_timers(now)
        return actions

    def answered_by(self, kind: str, now: float) -> list[Action]:
        """Answering-machine detection's verdict on an outbound call."""
        note = Note("answered_by", {"kind": kind})
        if not self._awaiting_answer:
            return [note]
        self._awaiting_answer = False
        self._deadlines.answer_by = None
        if kind in MACHINE_ANSWERS:
            if kind == "fax" or not self.profile.voicemail_message:
                return [note, *self._hang_up_now(now, f"answered by {kind}")]
            self._set_closing(HangUp("left a voicemail"), now)
            actions = [note, *self._want_response(
                say_exactly(self.profile.voicemail_message, "voicemail"))]
        else:
            actions = [note]
            if self.upstream is UpstreamState.READY:
                actions.append(self._session_update())
            greeting = self.profile.greeting_response()
            if greeting is not None:
                actions += self._want_response(greeting)
            elif self._awaiting_reply or self.history.last_is_caller():
                actions += self._want_response(None)
        self._refresh_timers(now)
        return actions

    def _builtins_enabled(self) -> set[str]:
        enabled = set(self.profile.builtin_tools)
        if self.profile.handoffs:
            enabled.add("switch_agent")
        return enabled

    def _end_call_tool(self, event: rt.FunctionCallDone, now: float) -> list[Action]:
        reason = _argument(event.arguments, "reason") or "the conversation was finished"
        self._add_output(event.call_id, '{"ok": true}')
        self._announce_then(event, now, HangUp(f"agent ended the call: {reason}"),
                            instructed("Say a brief, friendly goodbye to the caller now.",
                                       "goodbye"))
        return self._flush_pending()

    def _transfer_tool(self, event: rt.FunctionCallDone, now: float) -> list[Action]:
        target = _argument(event.arguments, "target")
        number = self.profile.transfer_targets.get(target)
        if number is None:
            choices = ", ".join(sorted(self.profile.transfer_targets)) or "none"
            self._add_output(event.call_id, json.dumps(
                {"error": f"there is no transfer target {target!r}; choose one of: {choices}"}))
            self._followup_wanted = True
            return self._flush_pending()
        self._add_output(event.call_id, '{"ok": true, "status": "transferring"}')
        twiml = transfer_twiml(number, self.profile.transfer_fallback)
        self._announce_then(event, now, RedirectCall(twiml, f"transferred to {target}"),
                            say_exactly(self.profile.transfer_announcement, "transfer"))
        return [Note("transfer", {"target": target}), *self._flush_pending()]

    def _switch_agent_tool(self, event: rt.FunctionCallDone, now: float) -> list[Action]:
        name = _argument(event.arguments, "agent")
        if name not in self.profile.handoffs or name not in self._agents:
            choices = ", ".join(self.profile.handoffs) or "none"
            self._add_output(event.call_id, json.dumps(
                {"error": f"there is no agent {name!r}; choose one of: {choices}"}))
            self._followup_wanted = True
            return self._flush_pending()
        self._add_output(event.call_id, json.dumps({"ok": True, "agent": name}))
        self._pending_switch = name
        self._followup = instructed("You have just taken over this call. Tell the caller in a "
                                    "few words that you can help, then continue.", "handoff")
        self._followup_wanted = True
        return self._flush_pending()

    def _announce_then(self, event: rt.FunctionCallDone, now: float,
                       closing: HangUp | RedirectCall, announcement: dict[str, Any]) -> None:
        """Close the call once the caller has heard the agent's last words. If the response
        that called the tool already spoke (the usual "Goodbye!" before `end_call`), those are
        the last words; otherwise the agent is asked to say `announcement` first."""
        if event.response_id in self._response_audio:
            self._no_followup = True
        else:
            self._followup = announcement
        self._followup_wanted = True
        self._set_closing(closing, now)

    def _switch_agent(self, name: str) -> list[Action]:
        """Swap to another agent: a `session.update`, or a fresh upstream session when the
        voice changes (a Realtime session cannot change voice once it has spoken)."""
        old = self.profile
        new = replace(self._agents[name], audio_format=old.audio_format)  # fixed per call
        self.profile = new
        self._deadlines.profile = new
        self._pending_switch = None
        note = Note("agent_switched", {"from": old.name, "to": name})
        if new.voice != old.voice and self._response_audio:
            self._resume_after_reconnect = True
            self._carry_unanswered_over()
            self.upstream = UpstreamState.OPENING
            return [note, CloseUpstream(f"switching to agent {name}"),
                    OpenUpstream(attempt=0, delay=0.0)]
        return [note, self._session_update()]

    def _recycle_upstream(self) -> list[Action]:
        """Replace the Realtime session before its 60-minute cap, at a quiet turn boundary: the
        caller's audio waits in the backlog for the new session, which gets the conversation."""
        self._deadlines.recycle_at = None
        self._recycling = True
        self._carry_unanswered_over()
        self._audio_origin_ms = None  # the new session's audio clock starts afresh
        self._audio.caller_reset()
        self.upstream = UpstreamState.OPENING
        return [Note("upstream_recycle"), CloseUpstream("session recycle"),
                OpenUpstream(attempt=0, delay=0.0)]

    def _set_closing(self, closing: HangUp | RedirectCall, now: float) -> None:
        if self._closing is None:
            self._closing = closing
            self._deadlines.close_at = now + CLOSE_GRACE_S

    def _wrap_up(self, now: float, closing: HangUp, instructions: str) -> list[Action]:
        if self._closing is not None:
            return []
        self._set_closing(closing, now)
        return self._want_response(instructed(instructions, "wrap_up")) + self._maybe_close(now)

    def _maybe_close(self, now: float) -> list[Action]:
        """Carry out the pending hang-up or transfer once the caller has heard everything."""
        if self._closing is None or self._closed or self.state is not CallState.STREAMING:
            return []
        if (self._active_response is not None or self._response_requested
                or self._pending_items or self._followup_wanted or self._outbound
                or self._playback.awaiting_echo()):
            return []
        return self._close()

    def _close(self) -> list[Action]:
        if self._closing is None or self._closed:
            return []
        self._closed = True
        self._deadlines.close_at = None
        self.end_reason = self._closing.reason
        return [self._closing]

    def _hang_up_now(self, now: float, reason: str) -> list[Action]:
        if self._closed:
            return []
        self._closing = HangUp(reason)
        return self._close()

    def _on_due(self, now: float) -> list[Action]:
        if self.state is not CallState.STREAMING or self._closed:
            return []
        actions: list[Action] = []
        deadlines = self._deadlines
        for due in dict.fromkeys(deadlines.due(now, idle_possible=self._idle_possible())):
            if due is Due.DTMF_FLUSH:
                actions += self._flush_dtmf()
            elif due is Due.FILLER:
                actions += self._say_fillers(now)
            elif due is Due.RECYCLE:
                actions += self._recycle_upstream()
            elif due is Due.UPSTREAM_STALL:
                actions += self._upstream_stalled(now)
            elif due is Due.ANSWER_TIMEOUT:
                deadlines.answer_by = None
                actions += [Note("answer_timeout"), *self.answered_by("unknown", now)]
            elif due is Due.CLOSE_ANYWAY:
                actions += [Note("closing_without_confirmation"), *self._close()]
            elif due is Due.DURATION_WARNING:
                deadlines.warned = True
                actions += self._system_note("The call must end in about a minute. Start "
                                             "wrapping up politely.")
            elif due is Due.DURATION_WRAP_UP:
                deadlines.wrapped_up = True
                actions += self._wrap_up(now, HangUp("maximum call length reached"),
                                         "The call has reached its time limit. Tell the caller "
                                         "politely and say goodbye.")
            elif due is Due.DURATION_LIMIT:
                actions += self._hang_up_now(now, "maximum call length reached")
            elif due is Due.IDLE_PROMPT:
                deadlines.idle_prompted = True
                actions += [Note("idle_prompt"), *self._want_response(instructed(
                    "The caller has been silent for a while. Ask briefly whether they are "
                    "still there.", "idle_prompt"))]
            elif due is Due.IDLE_HANGUP:
                actions += self._wrap_up(now, HangUp("caller silent"),
                                         "The caller seems to have gone. Say a brief goodbye.")
        return actions

    def _say_fillers(self, now: float) -> list[Action]:
        due = [cid for cid, at in self._deadlines.fillers.items() if at <= now]
        for call_id in due:
            del self._deadlines.fillers[call_id]
        if self._active_response is not None or self._response_requested or self._outbound:
            return []  # the agent is already talking: no dead air to fill
        name = self._tool_names.get(due[0], "") if due else ""
        line = self.profile.tool_fillers.get(name) or "One moment while I check that."
        return [Note("tool_filler", {"tool": name}), self._request_response(
            say_exactly(line, "filler"))]

    def _system_note(self, text: str) -> list[Action]:
        item = {"type": "message", "role": "system",
                "content": [{"type": "input_text", "text": text}]}
        if self.upstream is not UpstreamState.READY:
            return []
        return [SendRealtime(rt.CreateItem(item))]

    def _on_dtmf(self, dtmf: tw.Dtmf, now: float) -> list[Action]:
        """Keypad digits reach the model as the caller's words: at the terminator or a pause."""
        note = Note("dtmf", {"digit": dtmf.digit})
        self._deadlines.caller_active(now)
        if dtmf.digit == self.profile.dtmf_terminator:
            return [note, *self._flush_dtmf()]
        self._dtmf.append(dtmf.digit)
        self._deadlines.dtmf_at = now + self.profile.dtmf_pause_s
        return [note]

    def _flush_dtmf(self) -> list[Action]:
        digits = "".join(self._dtmf)
        self._dtmf.clear()
        self._deadlines.dtmf_at = None
        if not digits:
            return []
        self._dtmf_turns += 1
        text = f"(The caller pressed these keys on the phone keypad: {digits})"
        key = f"dtmf:{self._dtmf_turns}"
        self.history.caller_said(key, text)
        self._pending_items.append(rt.CreateItem(
            {"type": "message", "role": "user", "content": [{"type": "input_text",
                                                             "text": text}]}))
        return self._want_response(None)


def _argument(arguments: str, name: str) -> str:
    """One string argument of a built-in tool call ("" when absent or malformed)."""
    try:
        value = json.loads(arguments).get(name, "")
    except (ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


_BUILTINS: dict[str, Callable[[CallControl, rt.FunctionCallDone, float], list[Action]]] = {
    "end_call": CallControl._end_call_tool,
    "transfer_call": CallControl._transfer_tool,
    "switch_agent": CallControl._switch_agent_tool,
}
