"""The reply lifecycle: one reply at a time, owed or asked for, then active, then done;
suppressed replies, the follow-up, and resuming after a lost session."""

from __future__ import annotations

import pytest

from callbridge.core.machine import Machine
from callbridge.core.reply import TABLE, Followup, Reply, ReplyLifecycle
from callbridge.errors import InvalidState
from tests.core.machines import pairs, walk_one


def _fire(machine: Machine[Reply], event: str) -> object:
    assert isinstance(machine, ReplyLifecycle)
    actions = {
        "turn_ended": machine.turn_ended,
        "request": machine.request,
        "started": lambda: machine.started("r1"),
        "done": machine.done,
        "refused": machine.refused,
        "abandoned": machine.abandon,
    }
    return actions[event]()


@pytest.mark.parametrize(("state", "event"), pairs(TABLE, Reply))
def test_every_state_takes_exactly_the_events_its_table_allows(state: Reply,
                                                               event: str) -> None:
    """Allowed events move where the table says; every other one raises InvalidState."""
    walk_one(ReplyLifecycle, _fire, state, event)


def test_a_second_request_while_one_is_pending_is_refused() -> None:
    """One reply at a time: asking again before the first started is a local fault."""
    reply = ReplyLifecycle()
    reply.request()
    with pytest.raises(InvalidState, match="request"):
        reply.request()


def test_only_the_reply_under_way_finishes_it() -> None:
    """A suppressed reply finishing late neither ends the active one nor stays suppressed."""
    reply = ReplyLifecycle()
    reply.started("old")
    assert reply.suppress_active() == "old"
    reply.started("new")
    reply.finished("old")
    assert (reply.state, reply.active, reply.suppressed) == (Reply.ACTIVE, "new", set())
    reply.finished("new")
    assert (reply.state, reply.active) == (Reply.IDLE, None)


def test_a_turn_that_ends_during_a_reply_is_still_owed_after_it() -> None:
    """The caller spoke again while the agent replied: the model owes the next reply."""
    reply = ReplyLifecycle()
    reply.started("r1")
    reply.turn_ended()
    reply.finished("r1")
    assert reply.state is Reply.OWED
    assert reply.owed
    assert not reply.busy


def test_losing_the_session_mid_reply_marks_it_for_resuming() -> None:
    """A reply asked for or under way when the session died is resumed on the next one."""
    reply = ReplyLifecycle()
    reply.request()
    reply.abandon()
    assert (reply.state, reply.resume) == (Reply.IDLE, True)
    quiet = ReplyLifecycle()
    quiet.abandon()
    assert quiet.resume is False


def test_the_last_words_stay_last() -> None:
    """Once the follow-up is silent (the agent said goodbye), a later wish for a reply keeps
    it silent."""
    reply = ReplyLifecycle()
    reply.want_silent()
    reply.want({"instructions": "say more"})
    assert reply.followup is Followup.SILENT
    assert reply.wanted
    reply.clear_followup()
    assert not reply.wanted
