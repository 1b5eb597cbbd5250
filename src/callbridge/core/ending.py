"""How a call ends on our side: a hang-up or a transfer, carried out once the caller has heard
the agent's last words, or at once.

    state    event       next     when
    OPEN     announce    CLOSING  a hang-up or transfer is decided; the last words still play
    OPEN     close_now   CLOSED   hang up at once (a fax, the hard time limit)
    CLOSING  close_now   CLOSED   everything was heard, or the grace deadline passed
    CLOSED   reopen      OPEN     Twilio refused the transfer: the call goes on with the agent

Anything else is refused with `InvalidState` (a second hang-up while one is pending, closing a
call that is already closed). A last line that never finishes playing holds the call open for
at most `CLOSE_GRACE_S`. No I/O. No clock.
"""

from __future__ import annotations

from enum import Enum

from callbridge.core.actions import HangUp, RedirectCall
from callbridge.core.control import Deadlines
from callbridge.core.machine import Machine

CLOSE_GRACE_S = 20.0


class Ending(Enum):
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


# Module constants for the per-event checks (see `states`: an enum lookup costs ~70 ns on 3.11).
OPEN, CLOSED = Ending.OPEN, Ending.CLOSED


TABLE: dict[tuple[Ending, str], Ending] = {
    (Ending.OPEN, "announce"): Ending.CLOSING,
    (Ending.OPEN, "close_now"): Ending.CLOSED,
    (Ending.CLOSING, "close_now"): Ending.CLOSED,
    (Ending.CLOSED, "reopen"): Ending.OPEN,
}

Closing = HangUp | RedirectCall


class CallEnding(Machine[Ending]):
    """The pending hang-up or transfer and its grace deadline (kept in the call's timers)."""

    TABLE = TABLE
    NAME = "the call's ending"

    def __init__(self, deadlines: Deadlines) -> None:
        super().__init__(Ending.OPEN)
        self._deadlines = deadlines
        self.closing: Closing | None = None

    def announce(self, closing: Closing, now: float) -> None:
        """Close with `closing` once the caller has heard everything (or after the grace)."""
        self._move("announce")
        self.closing = closing
        self._deadlines.close_at = now + CLOSE_GRACE_S

    def close_now(self, closing: Closing | None = None) -> Closing:
        """Carry out the pending closing (or `closing`, which replaces it) now: the caller
        must then carry out the returned action."""
        self._move("close_now")
        self.closing = closing or self.closing
        assert self.closing is not None, "close_now from OPEN needs a closing"
        self._deadlines.close_at = None
        return self.closing

    def reopen(self) -> None:
        """The closing failed in a way the call survives (a refused transfer)."""
        self._move("reopen")
        self.closing = None
