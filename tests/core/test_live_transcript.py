"""GPT-Live transcripts become turns by timing; an agent turn is cut at what was heard."""

from __future__ import annotations

import pytest

from callbridge.core.live_transcript import LiveTurn, TurnGrouper


def texts(turns: list[LiveTurn]) -> list[tuple[str, str]]:
    return [(turn.side, turn.text) for turn in turns]


def test_fragments_join_with_their_own_spaces_into_one_turn() -> None:
    """Close fragments of one side are one turn; the text keeps the fragments' spacing."""
    grouper = TurnGrouper()
    assert grouper.add("input", " can I", 5200, 5600) == []
    assert grouper.add("input", " move my", 5600, 6000) == []
    assert grouper.add("input", " cleaning?", 6000, 6400) == []
    assert texts(grouper.flush()) == [("input", "can I move my cleaning?")]


def test_a_gap_of_the_threshold_starts_a_new_turn_of_the_same_side() -> None:
    """0.8 s of quiet on one side finishes that side's turn when its next fragment comes."""
    grouper = TurnGrouper(gap_ms=800)
    grouper.add("output", " Hello.", 0, 700)
    assert grouper.add("output", " Still there?", 1499, 2000) == []
    finished = grouper.add("output", " Hello?", 2800, 3200)
    assert texts(finished) == [("output", "Hello. Still there?")]
    assert finished[0].start_ms == 0
    assert finished[0].end_ms == 2000


def test_both_sides_run_at_once_without_ending_each_other() -> None:
    """Full duplex: a caller fragment while the agent talks does not end the agent's turn."""
    grouper = TurnGrouper()
    grouper.add("output", " Your order is", 0, 600)
    grouper.add("input", " mhm", 500, 700)
    grouper.add("output", " ready for pickup.", 600, 1500)
    assert texts(grouper.flush()) == [("output", "Your order is ready for pickup."),
                                      ("input", "mhm")]


def test_quiet_time_on_the_session_clock_finishes_turns_in_start_order() -> None:
    """With no next fragment, the session timeline moving past a turn's end finishes it."""
    grouper = TurnGrouper(gap_ms=800)
    grouper.add("input", " Hi", 100, 400)
    grouper.add("output", " Hello", 450, 900)
    assert grouper.close_due(1100) == []
    assert texts(grouper.close_due(1200)) == [("input", "Hi")]
    assert grouper.open_turn("output") is not None
    assert texts(grouper.close_due(1700)) == [("output", "Hello")]
    assert grouper.open_turn("output") is None


def test_an_agent_turn_is_cut_at_what_the_caller_heard() -> None:
    """Only fragments that had ended when playback stopped count as heard."""
    grouper = TurnGrouper()
    grouper.add("output", " The total is", 1000, 1600)
    grouper.add("output", " forty dollars", 1600, 2300)
    grouper.add("output", " and twenty cents.", 2300, 3100)
    [turn] = grouper.flush()
    assert turn.text_until(999) == ""
    assert turn.text_until(2300) == "The total is forty dollars"
    assert turn.text_until(5000) == turn.text


def test_an_unknown_side_is_refused() -> None:
    """Only input and output exist."""
    with pytest.raises(ValueError, match="side"):
        TurnGrouper().add("caller", "hi", 0, 1)
