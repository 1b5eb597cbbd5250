"""The reply lifecycle: whether the model owes the caller a reply, has been asked for one, or is
giving one — and what is waiting to go to the model before the next reply is asked for.

    state        event        next         when
    IDLE         turn_ended   OWED         the caller finished a turn; the model answers it
    OWED         turn_ended   OWED
    REQUESTED    turn_ended   REQUESTED
    ACTIVE       turn_ended   ACTIVE_OWED  the caller spoke again while a reply is under way
    ACTIVE_OWED  turn_ended   ACTIVE_OWED
    IDLE         request      REQUESTED    we asked the model for a reply
    OWED         request      REQUESTED
    IDLE         started      ACTIVE       a reply began (asked for, or the model's own)
    OWED         started      ACTIVE
    REQUESTED    started      ACTIVE
    ACTIVE       started      ACTIVE
    ACTIVE_OWED  started      ACTIVE
    ACTIVE       done         IDLE         the reply under way finished
    ACTIVE_OWED  done         OWED
    REQUESTED    refused      OWED         "a reply is already active": one is coming anyway
    *            abandoned    IDLE / OWED  the model's session was lost mid-reply

Asking for a reply while one is requested or active is refused (`InvalidState`): one reply at
a time. Replies the caller talked over are suppressed: their late audio and tool calls are
dropped. The follow-up is what the session wants once nothing else is under way — items to add
(tool outputs, keypad digits) and then a reply, with one-off instructions or none, or no reply
at all (the agent already said its last words). No I/O. No clock.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from callbridge.core.actions import SendRealtime
from callbridge.core.machine import Machine


class Reply(Enum):
    IDLE = "idle"
    OWED = "owed"
    REQUESTED = "requested"
    ACTIVE = "active"
    ACTIVE_OWED = "active_owed"


# Module constants for the per-event checks (see `states`: an enum lookup costs ~70 ns on 3.11).
_IDLE, _REQUESTED = Reply.IDLE, Reply.REQUESTED
_ACTIVE, _ACTIVE_OWED = Reply.ACTIVE, Reply.ACTIVE_OWED


_ALL = tuple(Reply)
TABLE: dict[tuple[Reply, str], Reply] = {
    (Reply.IDLE, "turn_ended"): Reply.OWED,
    (Reply.OWED, "turn_ended"): Reply.OWED,
    (Reply.REQUESTED, "turn_ended"): Reply.REQUESTED,
    (Reply.ACTIVE, "turn_ended"): Reply.ACTIVE_OWED,
    (Reply.ACTIVE_OWED, "turn_ended"): Reply.ACTIVE_OWED,
    (Reply.IDLE, "request"): Reply.REQUESTED,
    (Reply.OWED, "request"): Reply.REQUESTED,
    **{(state, "started"): Reply.ACTIVE for state in _ALL},
    (Reply.ACTIVE, "done"): Reply.IDLE,
    (Reply.ACTIVE_OWED, "done"): Reply.OWED,
    (Reply.REQUESTED, "refused"): Reply.OWED,
    (Reply.IDLE, "abandoned"): Reply.IDLE,
    (Reply.OWED, "abandoned"): Reply.OWED,
    (Reply.REQUESTED, "abandoned"): Reply.IDLE,
    (Reply.ACTIVE, "abandoned"): Reply.IDLE,
    (Reply.ACTIVE_OWED, "abandoned"): Reply.OWED,
}

class Followup(Enum):
    NONE = "none"
    REPLY = "reply"  # add the waiting items, then ask for a reply
    SILENT = "silent"  # add the waiting items, ask for nothing (the last words were said)


class ReplyLifecycle(Machine[Reply]):
    """One reply at a time, the replies to drop, and the follow-up waiting for its turn."""

    TABLE = TABLE
    NAME = "the reply"

    def __init__(self) -> None:
        super().__init__(Reply.IDLE)
        self.active: str | None = None  # the reply under way
        self.suppressed: set[str] = set()  # replies the caller talked over
        self.spoke: set[str] = set()  # replies that produced audio
        self.followup = Followup.NONE
        self.followup_body: dict[str, Any] | None = None
        self.resume = False  # a reply was owed when the model's session went
        self.waiting: list[SendRealtime] = []  # items to add before the next reply is asked

    @property
    def busy(self) -> bool:
        """A reply is asked for or under way: nothing else may be asked now."""
        state = self.state  # identity tests: an enum's hash is Python code, this is per event
        return state is _ACTIVE or state is _REQUESTED or state is _ACTIVE_OWED

    @property
    def owed(self) -> bool:
        """The model owes the caller something: a turn ended, a reply was asked or runs."""
        return self.state is not _IDLE

    def turn_ended(self) -> None:
        self._move("turn_ended")

    def request(self) -> None:
        """We send the model a request for a reply (refused while one is busy)."""
        self._move("request")

    def started(self, reply_id: str) -> None:
        self._move("started")
        self.active = reply_id

    def finished(self, reply_id: str) -> None:
        """Reply `reply_id` finished: the state moves only if it is the one under way."""
        self.suppressed.discard(reply_id)
        if reply_id == self.active:
            self.done()

    def done(self) -> None:
        """The reply under way finished."""
        self._move("done")
        self.active = None

    def refused(self) -> None:
        """The model refused our request because a reply is already under way."""
        self._move("refused")

    def abandon(self) -> None:
        """The model's session is gone: remember to resume if anything was owed."""
        if self.owed:
            self.resume = True
        self._move("abandoned")
        self.active = None

    def suppress_active(self) -> str | None:
        """The caller talked over the reply under way: drop what is left of it."""
        if self.active is not None:
            self.suppressed.add(self.active)
        return self.active

    def want(self, body: dict[str, Any] | None) -> None:
        """Ask for a reply (with one-off instructions `body`) once nothing else is under way."""
        if self.followup is not Followup.SILENT:  # the last words were said: they stay last
            self.followup = Followup.REPLY
        self.followup_body = body

    def want_silent(self) -> None:
        """Send the waiting items but ask for no reply."""
        self.followup = Followup.SILENT

    @property
    def wanted(self) -> bool:
        """Items or a reply wait for their turn."""
        return bool(self.waiting) or self.followup is not Followup.NONE

    def clear_followup(self) -> None:
        self.followup = Followup.NONE
        self.followup_body = None
