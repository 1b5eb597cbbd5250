"""The ending machine: open → closing → closed, at once or after the last words, reopened only
when a transfer is refused; its grace deadline lives in the call's timers."""

from __future__ import annotations

import pytest

from callbridge.core.actions import HangUp, RedirectCall
from callbridge.core.agent import AgentProfile
from callbridge.core.control import Deadlines
from callbridge.core.ending import CLOSE_GRACE_S, TABLE, CallEnding, Ending
from callbridge.core.machine import Machine
from callbridge.errors import InvalidState
from tests.core.machines import pairs, walk_one


def _ending() -> CallEnding:
    return CallEnding(Deadlines(AgentProfile()))


def _fire(machine: Machine[Ending], event: str) -> object:
    assert isinstance(machine, CallEnding)
    if event == "announce":
        return machine.announce(HangUp("done"), 0.0)
    if event == "close_now":
        return machine.close_now(HangUp("now"))
    return machine.reopen()


@pytest.mark.parametrize(("state", "event"), pairs(TABLE, Ending))
def test_every_state_takes_exactly_the_events_its_table_allows(state: Ending,
                                                               event: str) -> None:
    """Allowed events move where the table says; every other one raises InvalidState."""
    walk_one(_ending, _fire, state, event)


def test_announcing_arms_the_grace_deadline_and_closing_disarms_it() -> None:
    """A last line that never finishes playing holds the call open for CLOSE_GRACE_S at most."""
    deadlines = Deadlines(AgentProfile())
    ending = CallEnding(deadlines)
    ending.announce(HangUp("bye"), 10.0)
    assert deadlines.close_at == 10.0 + CLOSE_GRACE_S
    assert ending.close_now() == HangUp("bye")
    assert deadlines.close_at is None


def test_closing_now_replaces_the_announced_closing() -> None:
    """The hard time limit hangs up even while a transfer's announcement plays."""
    ending = _ending()
    ending.announce(RedirectCall("<Response/>", "transfer"), 0.0)
    assert ending.close_now(HangUp("maximum call length reached")).reason == (
        "maximum call length reached")


def test_a_second_hang_up_while_one_is_pending_is_refused() -> None:
    """One ending per call: announcing twice is a local fault, not a silent overwrite."""
    ending = _ending()
    ending.announce(HangUp("first"), 0.0)
    with pytest.raises(InvalidState, match="closing"):
        ending.announce(HangUp("second"), 0.0)
    assert ending.closing == HangUp("first")


def test_a_reopened_call_forgets_its_closing() -> None:
    """After a refused transfer the call is open again, with nothing pending."""
    ending = _ending()
    ending.announce(RedirectCall("<Response/>", "transfer"), 0.0)
    ending.close_now()
    ending.reopen()
    assert (ending.state, ending.closing) == (Ending.OPEN, None)
