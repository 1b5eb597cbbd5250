"""PlaybackTracker: what the caller heard comes from mark echoes only, in order, never stale."""

from __future__ import annotations

import pytest

from callbridge.core.playback import Echo, ItemAudio, PlaybackTracker


def tracker_with(
    item_id: str, *chunks_ms: float, now: float = 0.0
) -> tuple[PlaybackTracker, list[str]]:
    """A tracker that received and sent `chunks_ms` of `item_id`; returns it and the mark names."""
    tracker = PlaybackTracker()
    tracker.received(item_id, 0, sum(chunks_ms))
    names = [tracker.sent(item_id, ms, now) for ms in chunks_ms]
    return tracker, names


def test_each_sent_chunk_gets_its_own_mark_name() -> None:
    """sent() names a fresh mark per chunk, so echoes can be told apart."""
    _, names = tracker_with("item_1", 40, 40, 40)
    assert len(set(names)) == 3


def test_sending_audio_does_not_count_as_heard() -> None:
    """Audio handed to Twilio is not heard until its mark comes back."""
    tracker, _ = tracker_with("item_1", 40, 40, 40)
    assert tracker.heard_ms("item_1") == 0
    assert tracker.item("item_1") == ItemAudio(content_index=0, received_ms=120.0, sent_ms=120.0,
                                               heard_ms=0.0)


def test_an_echo_moves_heard_to_the_end_of_its_chunk() -> None:
    """Echo of the first mark → the first chunk's 40 ms were heard, no more."""
    tracker, names = tracker_with("item_1", 40, 40, 40)
    assert tracker.echoed(names[0], 0.05) is Echo.PLAYED
    assert tracker.heard_ms("item_1") == 40
    assert tracker.pending_items() == {"item_1"}


def test_echoes_advance_heard_in_order() -> None:
    """Successive echoes move heard to 40, 80 and 120 ms, and then nothing awaits an echo."""
    tracker, names = tracker_with("item_1", 40, 40, 40)
    heard = []
    for i, name in enumerate(names):
        assert tracker.echoed(name, 0.04 * (i + 1)) is Echo.PLAYED
        heard.append(tracker.heard_ms("item_1"))
    assert heard == [40, 80, 120]
    assert tracker.awaiting_echo() is False


def test_echoing_a_later_mark_implies_the_earlier_ones_played() -> None:
    """Marks echo in order: the third echo means chunks one and two played as well."""
    tracker, names = tracker_with("item_1", 40, 40, 40)
    assert tracker.echoed(names[2], 0.12) is Echo.PLAYED
    assert tracker.heard_ms("item_1") == 120
    assert tracker.pending_items() == set()
    assert [tracker.echoed(name, 0.13) for name in names[:2]] == [Echo.UNKNOWN, Echo.UNKNOWN]
    assert tracker.heard_ms("item_1") == 120


def test_an_echo_never_moves_heard_backwards() -> None:
    """Once 120 ms are confirmed, nothing can make heard smaller."""
    tracker, names = tracker_with("item_1", 40, 40, 40)
    tracker.echoed(names[2], 0.12)
    tracker.echoed(names[0], 0.13)
    assert tracker.heard_ms("item_1") == 120


def test_marks_pending_at_clear_echo_as_stale_and_do_not_move_heard() -> None:
    """After clear(), echoes of the flushed marks are STALE and heard stays where it was."""
    tracker, names = tracker_with("item_1", 40, 40, 40)
    tracker.echoed(names[0], 0.04)
    tracker.clear(0.05)
    assert [tracker.echoed(name, 0.06) for name in names[1:]] == [Echo.STALE, Echo.STALE]
    assert tracker.heard_ms("item_1") == 40
    assert tracker.item("item_1").heard_ms == 40.0


def test_a_stale_echo_is_recognised_once() -> None:
    """The same stale mark echoed twice is STALE, then UNKNOWN."""
    tracker, names = tracker_with("item_1", 40)
    tracker.clear(0.0)
    assert [tracker.echoed(names[0], 0.01), tracker.echoed(names[0], 0.02)] == [
        Echo.STALE,
        Echo.UNKNOWN,
    ]


def test_a_stale_echo_after_new_audio_does_not_confirm_the_new_audio() -> None:
    """A flushed mark echoing late, after new audio was sent, leaves the new audio unconfirmed."""
    tracker, old = tracker_with("item_1", 40, 40)
    tracker.clear(0.05)
    tracker.received("item_2", 0, 40)
    new = tracker.sent("item_2", 40, 0.06)
    assert tracker.echoed(old[1], 0.07) is Echo.STALE
    assert (tracker.heard_ms("item_1"), tracker.heard_ms("item_2")) == (0, 0)
    assert tracker.pending_items() == {"item_2"}
    assert tracker.echoed(new, 0.10) is Echo.PLAYED
    assert tracker.heard_ms("item_2") == 40


@pytest.mark.parametrize("name", ["m999", "", "responsePart", "m1 "])
def test_a_mark_we_never_sent_is_unknown_and_changes_nothing(name: str) -> None:
    """An echo of a name we never sent is UNKNOWN; heard and the pending set are untouched."""
    tracker, _ = tracker_with("item_1", 40, 40)
    assert tracker.echoed(name, 0.01) is Echo.UNKNOWN
    assert (tracker.heard_ms("item_1"), tracker.pending_items()) == (0, {"item_1"})
    assert tracker.play_end == pytest.approx(0.08)


def test_heard_is_clamped_to_the_audio_received() -> None:
    """heard_ms never exceeds what the model delivered, even when more was confirmed played."""
    tracker = PlaybackTracker()
    tracker.received("item_1", 0, 100)
    names = [tracker.sent("item_1", 40, 0.0) for _ in range(3)]
    tracker.echoed(names[-1], 0.12)
    assert tracker.heard_ms("item_1") == 100


def test_heard_is_whole_milliseconds_as_an_int() -> None:
    """Fractional ms are truncated and the result is an int (audio_end_ms must be an integer)."""
    tracker, names = tracker_with("item_1", 37.5, 37.5)
    tracker.echoed(names[1], 0.1)
    heard = tracker.heard_ms("item_1")
    assert (heard, type(heard)) == (75, int)
    tracker2, names2 = tracker_with("item_1", 37.875)
    tracker2.echoed(names2[0], 0.1)
    assert tracker2.heard_ms("item_1") == 37


def test_an_item_never_seen_was_heard_for_zero_ms() -> None:
    """heard_ms of an unknown item is 0, not an error."""
    assert PlaybackTracker().heard_ms("nobody") == 0


def test_each_item_keeps_its_own_position() -> None:
    """Positions are per item, in that item's own audio; echoing item_2 confirms item_1 too."""
    tracker = PlaybackTracker()
    tracker.received("item_1", 0, 80)
    tracker.received("item_2", 1, 60)
    first = [tracker.sent("item_1", 40, 0.0), tracker.sent("item_1", 40, 0.0)]
    second = tracker.sent("item_2", 60, 0.0)
    assert tracker.pending_items() == {"item_1", "item_2"}
    tracker.echoed(first[0], 0.04)
    assert (tracker.heard_ms("item_1"), tracker.heard_ms("item_2")) == (40, 0)
    tracker.echoed(second, 0.14)
    assert (tracker.heard_ms("item_1"), tracker.heard_ms("item_2")) == (80, 60)
    assert tracker.item("item_2") == ItemAudio(content_index=1, received_ms=60.0, sent_ms=60.0,
                                               heard_ms=60.0)


def test_play_end_is_the_sum_of_what_was_sent() -> None:
    """Three 40 ms chunks sent at t=0 play out at t=0.12."""
    tracker, _ = tracker_with("item_1", 40, 40, 40, now=0.0)
    assert tracker.play_end == pytest.approx(0.12)
    assert tracker.queued_seconds(0.0) == pytest.approx(0.12)
    assert tracker.queued_seconds(0.02) == pytest.approx(0.10)


def test_an_echo_reanchors_play_end_on_what_is_still_pending() -> None:
    """Echo of the first chunk at t=0.05 → the two chunks left end at 0.05 + 0.08."""
    tracker, names = tracker_with("item_1", 40, 40, 40, now=0.0)
    tracker.echoed(names[0], 0.05)
    assert tracker.play_end == pytest.approx(0.13)
    assert tracker.queued_seconds(0.05) == pytest.approx(0.08)


def test_the_last_echo_means_nothing_is_queued() -> None:
    """After the final echo Twilio holds nothing: play_end is the echo time."""
    tracker, names = tracker_with("item_1", 40, 40, now=0.0)
    tracker.echoed(names[-1], 0.09)
    assert (tracker.play_end, tracker.queued_seconds(0.09)) == (0.09, 0.0)


def test_queued_seconds_is_never_negative() -> None:
    """Long after everything played, queued_seconds is 0, not a negative number."""
    tracker, _ = tracker_with("item_1", 40, now=0.0)
    assert tracker.queued_seconds(5.0) == 0.0


def test_audio_sent_after_a_gap_starts_playing_when_sent() -> None:
    """A chunk sent after Twilio ran dry ends at send time plus its length, not earlier."""
    tracker, _ = tracker_with("item_1", 40, now=0.0)
    tracker.sent("item_1", 40, 1.0)
    assert tracker.play_end == pytest.approx(1.04)


def test_clear_empties_the_queue_at_once() -> None:
    """clear() at t=0.05 → Twilio holds nothing, no item awaits an echo."""
    tracker, _ = tracker_with("item_1", 40, 40, 40, now=0.0)
    tracker.clear(0.05)
    assert (tracker.play_end, tracker.queued_seconds(0.05)) == (0.05, 0.0)
    assert (tracker.pending_items(), tracker.awaiting_echo()) == (set(), False)
