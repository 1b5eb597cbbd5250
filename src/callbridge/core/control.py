"""Call control decided in the core: when to prompt an idle caller, when to wrap up a long call,
when to flush keypad digits, when a slow tool needs a holding line — and the TwiML of a transfer.

`Deadlines` keeps the times these things fall due; the session asks it what is due at `now` and
what the next deadline is, and turns each due item into actions. No I/O. No clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from twilio.twiml.voice_response import Dial, VoiceResponse

from callbridge.core.agent import AgentProfile


class Due(Enum):
    IDLE_PROMPT = "idle_prompt"
    IDLE_HANGUP = "idle_hangup"
    DURATION_WARNING = "duration_warning"
    DURATION_WRAP_UP = "duration_wrap_up"
    DURATION_LIMIT = "duration_limit"
    DTMF_FLUSH = "dtmf_flush"
    FILLER = "filler"
    CLOSE_ANYWAY = "close_anyway"
    ANSWER_TIMEOUT = "answer_timeout"
    RECYCLE = "recycle"
    UPSTREAM_STALL = "upstream_stall"


# Python 3.11 finds an enum member through the class on every lookup (~70 ns); the deadlines
# are listed after every event, so they use these module constants.
_IDLE_PROMPT, _IDLE_HANGUP = Due.IDLE_PROMPT, Due.IDLE_HANGUP
_DURATION_WARNING, _DURATION_WRAP_UP = Due.DURATION_WARNING, Due.DURATION_WRAP_UP
_DURATION_LIMIT, _DTMF_FLUSH, _FILLER = Due.DURATION_LIMIT, Due.DTMF_FLUSH, Due.FILLER
_CLOSE_ANYWAY, _ANSWER_TIMEOUT = Due.CLOSE_ANYWAY, Due.ANSWER_TIMEOUT
_RECYCLE, _UPSTREAM_STALL = Due.RECYCLE, Due.UPSTREAM_STALL


@dataclass
class Deadlines:
    """The call's timers. Each is a time in seconds (the session's clock) or None."""

    profile: AgentProfile
    stream_started: float | None = None
    caller_active_at: float | None = None  # last speech start or stop
    agent_quiet_at: float | None = None  # agent audio last finished playing
    idle_prompted: bool = False
    warned: bool = False
    wrapped_up: bool = False
    dtmf_at: float | None = None
    fillers: dict[str, float] = field(default_factory=dict)  # call_id → when
    close_at: float | None = None
    answer_by: float | None = None  # outbound: when to stop waiting for the AMD verdict
    recycle_at: float | None = None  # when the upstream session should be replaced
    upstream_by: float | None = None  # a reply is owed: the next upstream event is due by then

    def start(self, now: float) -> None:
        self.stream_started = now
        self.caller_active_at = now
        self.agent_quiet_at = now

    def caller_active(self, now: float) -> None:
        self.caller_active_at = now
        self.idle_prompted = False

    def due(self, now: float, *, idle_possible: bool) -> list[Due]:
        """Everything due at `now`, each reported once (the caller clears or re-arms it)."""
        due = [kind for kind, at in self._pending(idle_possible) if at <= now]
        return due

    def next_at(self, *, idle_possible: bool) -> float | None:
        """The earliest deadline, or None (after every event: kept cheap)."""
        best: float | None = None
        for _, at in self._pending(idle_possible):
            if best is None or at < best:
                best = at
        return best

    def _pending(self, idle_possible: bool) -> list[tuple[Due, float]]:
        p = self.profile
        pending: list[tuple[Due, float]] = []
        if self.dtmf_at is not None:
            pending.append((_DTMF_FLUSH, self.dtmf_at))
        if self.fillers:
            pending.extend((_FILLER, at) for at in self.fillers.values())
        if self.close_at is not None:
            pending.append((_CLOSE_ANYWAY, self.close_at))
        if self.answer_by is not None:
            pending.append((_ANSWER_TIMEOUT, self.answer_by))
        if self.upstream_by is not None:
            pending.append((_UPSTREAM_STALL, self.upstream_by))
        start = self.stream_started
        if start is None:
            return pending
        if self.recycle_at is not None and idle_possible:
            pending.append((_RECYCLE, self.recycle_at))
        if p.max_call_s is not None:
            limit = start + p.max_call_s
            if not self.warned and p.warn_before_s < p.max_call_s:
                pending.append((_DURATION_WARNING, limit - p.warn_before_s))
            if not self.wrapped_up:
                pending.append((_DURATION_WRAP_UP, limit - min(p.wrap_up_before_s,
                                                               p.max_call_s)))
            pending.append((_DURATION_LIMIT, limit))
        if idle_possible:
            quiet = max(self.agent_quiet_at or start, self.caller_active_at or start)
            if p.idle_prompt_s is not None and not self.idle_prompted:
                pending.append((_IDLE_PROMPT, quiet + p.idle_prompt_s))
            if p.idle_hangup_s is not None:
                pending.append((_IDLE_HANGUP, (self.caller_active_at or start)
                                + p.idle_hangup_s))
        return pending


def transfer_twiml(target: str, fallback: str, *, timeout_s: int = 25) -> str:
    """TwiML that bridges the caller to `target` (a number or a `sip:` URI), ringing with
    `answerOnBridge` so the caller hears ringback, then says `fallback` if nobody answers."""
    response = VoiceResponse()
    dial = Dial(answer_on_bridge=True, timeout=timeout_s)
    if target.startswith("sip:"):
        dial.sip(target)
    else:
        dial.number(target)
    response.append(dial)
    response.say(fallback)
    response.hangup()
    return str(response.to_xml(xml_declaration=False))


MACHINE_ANSWERS = frozenset({"machine_start", "machine_end_beep", "machine_end_silence",
                             "machine_end_other", "fax"})
