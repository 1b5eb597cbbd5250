"""The load harness's frame ledger: which frame an echo belongs to, by tag or by byte offset.

Pure: times are passed in, no sockets. The offset matcher is what makes `--audio pcm16`
measurable, so its edges are pinned here — a message carrying several frames, a frame split
across two messages, more audio than was sent, an echo after the loss horizon.
"""

from __future__ import annotations

import base64

from benchmarks.load.frames import (
    FRAME_BYTES,
    TONE_FRAME,
    FrameLedger,
    Window,
    tag_payload,
)

LOSS_FRAMES = 50


def _ledger_with_frames(count: int, every: float = 0.020) -> tuple[FrameLedger, Window]:
    """A ledger whose frames 1..count were written, measured, at 0, `every`, 2 × `every` …"""
    ledger, window = FrameLedger(LOSS_FRAMES), Window(late_s=0.2)
    for k in range(count):
        seq = ledger.next_frame(window)
        ledger.written(seq, k * every, True, window)
    return ledger, window


def _rtts_ms(window: Window) -> list[float]:
    """Every recorded round trip in ms, to 0.1 ms (the histogram's 10 µs bins floor them)."""
    return [round(index / 100, 1) for index, n in enumerate(window.hist) for _ in range(n)]


def test_one_message_with_several_frames_echoes_each_of_them() -> None:
    """480 bytes at once are the echoes of frames 1, 2 and 3, each timed from its own write."""
    ledger, window = _ledger_with_frames(3)
    ledger.received(3 * FRAME_BYTES, 0.100, window)
    assert window.echoed == 3
    assert _rtts_ms(window) == [60.0, 80.0, 100.0]


def test_a_frame_split_across_two_messages_is_echoed_when_its_last_byte_arrives() -> None:
    """100 bytes complete no frame; the next 220 complete frames 1 and 2, timed then."""
    ledger, window = _ledger_with_frames(3)
    ledger.received(100, 0.050, window)
    assert window.echoed == 0
    ledger.received(220, 0.090, window)
    assert window.echoed == 2
    assert _rtts_ms(window) == [70.0, 90.0]
    ledger.received(160, 0.120, window)  # 480 bytes in all: frame 3
    assert _rtts_ms(window) == [70.0, 80.0, 90.0]


def test_audio_beyond_the_frames_written_is_unmatched_not_echoed() -> None:
    """Two frames written, three frames' worth back: the third is unmatched."""
    ledger, window = _ledger_with_frames(2)
    ledger.received(3 * FRAME_BYTES, 0.050, window)
    assert (window.echoed, window.unmatched, window.lost) == (2, 1, 0)


def test_a_frame_not_echoed_within_the_loss_horizon_is_lost_and_its_late_echo_unmatched() -> None:
    """Once LOSS_FRAMES more frames went out, frame 1 is lost; its bytes arriving later do not
    count as an echo, and frame 2's still do."""
    ledger, window = _ledger_with_frames(LOSS_FRAMES + 1)
    assert window.lost == 1
    ledger.received(2 * FRAME_BYTES, 1.1, window)
    assert (window.echoed, window.unmatched, window.lost) == (1, 1, 1)


def test_frames_still_awaited_when_the_window_closes_are_lost() -> None:
    """`give_up_pending` counts every awaited frame as lost, once."""
    ledger, window = _ledger_with_frames(4)
    ledger.received(FRAME_BYTES, 0.1, window)
    ledger.give_up_pending(window)
    ledger.give_up_pending(window)
    assert (window.echoed, window.lost) == (1, 3)


def test_tags_name_their_frame_wherever_they_sit_in_a_message() -> None:
    """pcmu: two tagged frames in one payload, in any order, echo those two frames; another
    call's tag is unmatched; the same echo twice is a duplicate."""
    ledger, window = _ledger_with_frames(3)
    audio = b"".join(base64.b64decode(tag_payload(7, seq)) for seq in (3, 1))
    ledger.echoed_tags(audio, 7, 0.1, window)
    assert _rtts_ms(window) == [60.0, 100.0]
    ledger.echoed_tags(base64.b64decode(tag_payload(8, 2)), 7, 0.1, window)
    ledger.echoed_tags(base64.b64decode(tag_payload(7, 1)), 7, 0.1, window)
    assert (window.echoed, window.unmatched, window.duplicates) == (2, 1, 1)


def test_the_tone_frame_is_whole_periods_so_repeated_frames_join_seamlessly() -> None:
    """400 Hz at 8 kHz repeats every 20 samples, and 160 bytes hold exactly 8 periods."""
    assert len(TONE_FRAME) == FRAME_BYTES
    one_period_on = TONE_FRAME[20:] + TONE_FRAME[:20]
    assert one_period_on == TONE_FRAME
    assert len(set(TONE_FRAME)) > 4  # a tone, not silence
