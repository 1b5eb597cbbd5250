"""Acting on a live call from outside (the live-call API): say a line at the next turn boundary,
give the model a note it sees but does not speak, hang up (after a goodbye, or at once), and
transfer (after an announcement, or at once).

Each function takes the call's `CallSession` and the time, and returns either the actions to
carry out or a `Refusal` saying why the call cannot take the request now. They decide with the
session's own call-control machinery — `_want_response`, `_set_closing`, `_maybe_close`,
`_hang_up_now`, `_close`, `_system_note`, `_refresh_timers` and the `state`, `upstream`,
`_closing`, `_closed`, `_awaiting_answer`, `_caller_speaking`, `_followup_wanted` fields — so a
hang-up still waits until the caller has heard the last words, as the built-in tools do, and the
session keeps no extra state for them. `check_text` and `check_target` validate the requests.
No I/O. No clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from callbridge.core.actions import Action, HangUp, Note, RedirectCall
from callbridge.core.agent import say_exactly
from callbridge.core.control import transfer_twiml
from callbridge.core.session import CallSession
from callbridge.core.states import CallState, UpstreamState

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


def _not_now(session: CallSession) -> Refusal | None:
    if session.state is CallState.ENDED or session.state is CallState.ENDING or session._closed:
        return Refusal("the call is ending")
    if session.state is not CallState.STREAMING:
        return Refusal("the call's media stream has not started yet")
    if session._closing is not None:
        return Refusal("the call is already being hung up or transferred")
    return None


def say(session: CallSession, text: str, now: float) -> Outcome:
    """The agent says `text` word for word at the next turn boundary: at once when nobody is
    speaking, else after the current reply (or after the reply to the caller's current turn)."""
    refusal = _not_now(session)
    if refusal is not None:
        return refusal
    if session._awaiting_answer:
        return Refusal("the call is waiting for the answering-machine verdict")
    if session._followup_wanted:
        return Refusal("another line is already waiting to be said")
    body = say_exactly(text, "api_say")
    note = Note("api_say", {"chars": len(text)})
    if session._caller_speaking:
        # The caller's turn gets its reply first; the line follows that reply's response.done.
        session._followup = body
        session._followup_wanted = True
        return [note]
    actions = session._want_response(body)
    session._refresh_timers(now)
    return [note, *actions]


def add_context(session: CallSession, text: str, now: float) -> Outcome:
    """A note the model sees from now on (a system message), never spoken by itself."""
    refusal = _not_now(session)
    if refusal is not None:
        return refusal
    if session.upstream is not UpstreamState.READY:
        return Refusal("the agent's session is reconnecting; try again in a moment")
    return [Note("api_context", {"chars": len(text)}), *session._system_note(text)]


def hang_up(session: CallSession, now: float, goodbye: str | None = None) -> Outcome:
    """End the call: at once, or once the agent has said `goodbye` and it has played."""
    reason = "hung up through the API"
    if goodbye is None:
        if session.state is CallState.ENDED or session._closed:
            return Refusal("the call is ending")
        return [Note("api_hangup", {"goodbye": False}), *session._hang_up_now(now, reason)]
    refusal = _not_now(session)
    if refusal is not None:
        return refusal
    return [Note("api_hangup", {"goodbye": True}),
            *_announce_then(session, now, HangUp(reason), goodbye, "goodbye")]


def transfer(session: CallSession, now: float, to: str,
             announcement: str | None = None) -> Outcome:
    """Bridge the caller to `to` (checked with `check_target`): at once, or once the agent has
    said `announcement`. Nobody answering there hears the agent's `transfer_fallback`."""
    refusal = _not_now(session)
    if refusal is not None:
        return refusal
    closing = RedirectCall(transfer_twiml(to, session.profile.transfer_fallback),
                           "transferred through the API")
    note = Note("transfer", {"target": "api", "announced": announcement is not None})
    if announcement is None:
        session._closing = closing
        return [note, *session._close()]
    return [note, *_announce_then(session, now, closing, announcement, "transfer")]


def _announce_then(session: CallSession, now: float, closing: HangUp | RedirectCall,
                   line: str, purpose: str) -> list[Action]:
    session._set_closing(closing, now)
    actions = session._want_response(say_exactly(line, purpose)) + session._maybe_close(now)
    session._refresh_timers(now)
    return actions
