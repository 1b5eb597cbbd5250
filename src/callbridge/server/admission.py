"""Admission control: whether this instance takes another call, and what a refused caller hears.

Owns the three reasons to refuse — the instance is full (`CALLBRIDGE_MAX_CALLS`), it is draining
for shutdown, or the upstream is known to be down (a call just spent its whole reconnect budget)
— and the overflow TwiML: a transfer to `CALLBRIDGE_OVERFLOW_NUMBER` when one is configured,
otherwise a polite message and a hang-up. `/readyz` reports not ready for the same reasons, so a
load balancer stops sending calls.
"""

from __future__ import annotations

from callbridge.core.control import transfer_twiml
from callbridge.core.twiml import say_and_hang_up

UPSTREAM_DOWN_FOR_S = 30.0
BUSY_MESSAGE = ("Thank you for calling. All of our lines are busy right now. "
                "Please call again in a few minutes.")


class Admission:
    def __init__(self, max_calls: int | None, overflow_number: str = "",
                 busy_message: str = BUSY_MESSAGE) -> None:
        self.max_calls = max_calls
        self.overflow_number = overflow_number
        self.busy_message = busy_message
        self.draining = False
        self._upstream_down_until = 0.0

    def upstream_down(self, now: float) -> None:
        """A call could not reach the upstream at all: refuse new calls for a while."""
        self._upstream_down_until = now + UPSTREAM_DOWN_FOR_S

    def refusal(self, active_calls: int, now: float) -> str | None:
        """Why a new call is refused now, or None to admit it."""
        if self.draining:
            return "draining"
        if self.max_calls is not None and active_calls >= self.max_calls:
            return "full"
        if now < self._upstream_down_until:
            return "upstream_down"
        return None

    def overflow_twiml(self) -> str:
        if self.overflow_number:
            return transfer_twiml(self.overflow_number, self.busy_message)
        return say_and_hang_up(self.busy_message)
