"""Acting on a live call from outside (the live-call API): say a line at the next turn boundary,
give the model a note it sees but does not speak, hang up (after a goodbye, or at once), and
transfer (after an announcement, or at once).

Each function takes the call's `CallSession` and the time, and returns either the actions to
carry out or a `Refusal` saying why the call cannot take the request now. They decide with the
session's own call control (`conduct`, the `reply` and `ending` machines), so a line waits for
the reply under way, and a hang-up or transfer waits until the caller has heard the last words,
as the built-in tools do; the session keeps no extra state for them. The model API behind the
seam decides the wire (Realtime `response.create`, GPT-Live commentary). `check_text` and
`check_target` validate the requests. No I/O. No clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from callbridge.core import conduct
from callbridge.core.actions import Action, HangUp, Note, RedirectCall
from callbridge.core.agent import say_exactly
from callbridge.core.control import transfer_twiml
from callbridge.core.ending import Ending
from callbridge.core.reply import Followup
from callbridge.core.states import CallState

if TYPE_CHECKING:
    from callbridge.core.session import CallSession

MAX_TEXT_CHARS = 2000
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_SIP = re.compile(r"^sip:[^\s<>\"]{3,250}$")


@dataclass(frozen=True, slots=True)
class Refusal:
    """The call cannot take the request now (HTTP 409); `reason` says why."""

    reason: str


Outcome = list[Action] | Refusal


def check_text(text: object, name: str = "text") -> str | None:
    """Why `text` is not a line to say or a note to add, or None when it is."""
    if not isinstance(text, str) or not text.strip():
        return f"`{name}` must be a non-empty string"
    if len(text) > MAX_TEXT_CHARS:
        return f"`{name}` must be at most {MAX_TEXT_CHARS} characters"
    if "\x00" in text:
        return f"`{name}` must not contain a NUL character"
    return None


def check_target(to: object) -> str | None:
    """Why `to` is not a transfer target (an E.164 number or a `sip:` URI), or None."""
    if not isinstance(to, str) or not (_E164.match(to) or _SIP.match(to)):
        return "`to` must be an E.164 number (+15551234567) or a sip: URI"
    return None


def _not_now(s: CallSession) -> Refusal | None:
    if s.state in (CallState.ENDED, CallState.ENDING) or s.ending.state is Ending.CLOSED:
        return Refusal("the call is ending")
    if s.state is not CallState.STREAMING:
        return Refusal("the call's media stream has not started yet")
    if s.ending.state is Ending.CLOSING:
        return Refusal("the call is already being hung up or transferred")
    return None


def say(s: CallSession, text: str, now: float) -> Outcome:
    """The agent says `text` word for word at the next turn boundary: at once when nobody is
    speaking, else after the reply under way (or after the reply to the caller's current turn)."""
    refusal = _not_now(s)
    if refusal is not None:
        return refusal
    if s.awaiting_answer:
        return Refusal("the call is waiting for the answering-machine verdict")
    if s.reply.followup is not Followup.NONE:
        return Refusal("another line is already waiting to be said")
    body = say_exactly(text, "api_say")
    note = Note("api_say", {"chars": len(text)})
    if s.caller_speaking:  # the caller's turn gets its reply first; the line follows it
        s.reply.want(body)
        return [note]
    actions = conduct.want_reply(s, body)
    conduct.refresh_timers(s, now)
    return [note, *actions]


def add_context(s: CallSession, text: str, now: float) -> Outcome:
    """A note the model sees from now on, never spoken by itself."""
    refusal = _not_now(s)
    if refusal is not None:
        return refusal
    if not s.link.ever_ready:
        return Refusal("the agent's session is not ready yet; try again in a moment")
    # While reconnecting, the note waits in the history the new session is given.
    return [Note("api_context", {"chars": len(text)}), *conduct.system_note(s, text)]


def hang_up(s: CallSession, now: float, goodbye: str | None = None) -> Outcome:
    """End the call: at once, or once the agent has said `goodbye` and it has played."""
    reason = "hung up through the API"
    if goodbye is None:
        if s.ended or s.ending.state is Ending.CLOSED:
            return Refusal("the call is ending")
        return [Note("api_hangup", {"goodbye": False}), *conduct.hang_up_now(s, reason)]
    refusal = _not_now(s)
    if refusal is not None:
        return refusal
    return [Note("api_hangup", {"goodbye": True}),
            *_announce_then(s, now, HangUp(reason), goodbye, "goodbye")]


def transfer(s: CallSession, now: float, to: str, announcement: str | None = None) -> Outcome:
    """Bridge the caller to `to` (checked with `check_target`): at once, or once the agent has
    said `announcement`. Nobody answering there hears the agent's `transfer_fallback`."""
    refusal = _not_now(s)
    if refusal is not None:
        return refusal
    closing = RedirectCall(transfer_twiml(to, s.profile.transfer_fallback),
                           "transferred through the API")
    note = Note("transfer", {"target": "api", "announced": announcement is not None})
    if announcement is None:
        return [note, *conduct.close(s, closing)]
    return [note, *_announce_then(s, now, closing, announcement, "transfer")]


def _announce_then(s: CallSession, now: float, closing: HangUp | RedirectCall,
                   line: str, purpose: str) -> list[Action]:
    s.ending.announce(closing, now)
    actions = conduct.want_reply(s, say_exactly(line, purpose)) + conduct.maybe_close(s, now)
    conduct.refresh_timers(s, now)
    return actions
