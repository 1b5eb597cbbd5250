"""The upstream link: opening, configuring, ready, replaced after a loss or on purpose, given
up; the backoff, the caller audio kept for the next session, and the stall watch."""

from __future__ import annotations

import pytest

from callbridge.core.actions import OpenUpstream
from callbridge.core.machine import Machine
from callbridge.core.session import Timing
from callbridge.core.states import UpstreamState
from callbridge.core.upstream_link import TABLE, Opening, UpstreamLink
from tests.core.machines import pairs, walk_one


def _fire(machine: Machine[UpstreamState], event: str) -> object:
    assert isinstance(machine, UpstreamLink)
    if event == "replace":
        return machine.replace(Opening.RECYCLE)
    return getattr(machine, event)()


@pytest.mark.parametrize(("state", "event"), pairs(TABLE, UpstreamState))
def test_every_state_takes_exactly_the_events_its_table_allows(state: UpstreamState,
                                                               event: str) -> None:
    """Allowed events move where the table says; every other one raises InvalidState."""
    walk_one(lambda: UpstreamLink(Timing()), _fire, state, event)


def _ready(timing: Timing | None = None) -> UpstreamLink:
    link = UpstreamLink(timing or Timing())
    link.open()
    link.opened()
    assert link.ready() is False  # the first session: greet, do not restore
    return link


def test_losses_back_off_then_give_up_when_the_budget_is_spent() -> None:
    """Each loss in a row waits longer; after the last delay the link is FAILED."""
    link = _ready(Timing(reconnect_delays=(0.2, 0.4)))
    assert link.lost() == OpenUpstream(attempt=1, delay=0.2)
    assert link.lost() == OpenUpstream(attempt=2, delay=0.4)
    assert link.lost() is None
    assert link.state is UpstreamState.FAILED


def test_a_ready_session_resets_the_backoff_and_is_a_restore() -> None:
    """After a loss the next ready session restores the conversation; the budget is full."""
    link = _ready(Timing(reconnect_delays=(0.2,)))
    link.lost()
    link.opened()
    assert link.ready() is True
    assert link.lost() == OpenUpstream(attempt=1, delay=0.2)


def test_the_comfort_sound_is_for_outages_not_for_the_first_session_or_a_recycle() -> None:
    """Reconnecting after a loss is dead air to fill; opening or recycling is not."""
    link = UpstreamLink(Timing())
    link.open()
    assert not link.reconnecting
    link.opened()
    link.ready()
    link.replace(Opening.RECYCLE)
    assert not link.reconnecting
    link.lost()  # the replacement failed: an outage like any other
    assert link.reconnecting


def test_unanswered_caller_audio_goes_first_to_the_next_session() -> None:
    """Frames the lost session took since the caller's turn ended are given again, before
    the frames that arrived while no session was ready."""
    link = _ready()
    assert link.caller_frame("a", 1000)
    assert link.caller_frame("b", 1020)
    link.turn_committed()
    assert link.caller_frame("c", 1040)
    link.lost()
    assert not link.caller_frame("d", 1060)
    link.opened()
    link.ready()
    assert link.take_backlog(1060) == ["c", "d"]
    assert link.origin_ms == 1060 - 40


def test_the_stall_deadline_counts_from_the_later_of_the_last_event_and_the_owed_reply() -> None:
    """A reply owed at 10 s after a model event at 4 s must see an event by 13 s."""
    link = _ready(Timing(upstream_stall_s=3.0))
    link.heard_at = 4.0
    assert link.watch(9.0, owed=False) is None
    assert link.watch(10.0, owed=True) == 13.0
    link.heard_at = 11.0
    assert link.watch(11.5, owed=True) == 14.0
    assert link.stalled(14.0) == 3.0
