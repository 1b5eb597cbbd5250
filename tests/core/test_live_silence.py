"""GPT-Live's input stays continuous: silence fills a stalled caller stream in real time."""

from __future__ import annotations

import base64

from callbridge.core.live_silence import FRAME_MS, SILENCE_FRAME, InputClock

T0 = 1000.0


def feed(clock: InputClock, start: float, seconds: float) -> float:
    """The caller's frames arrive on time for `seconds`; returns the time after the last."""
    t = start
    for _ in range(round(seconds * 1000 / FRAME_MS)):
        t += FRAME_MS / 1000
        clock.caller_audio(FRAME_MS)
        clock.silence_due(t)
    return t


def run_until(clock: InputClock, start: float, end: float) -> list[tuple[float, int]]:
    """Wake whenever the clock asks, up to `end`; the (time, frames) of each fill."""
    fills = []
    t = start
    while True:
        wake = clock.next_wakeup
        assert wake is not None
        if wake > end:
            return fills
        assert wake >= t  # never asks to be woken in the past
        t = wake
        frames = clock.silence_due(t)
        assert frames > 0  # a wake-up it asked for always has work
        fills.append((t, frames))


def test_the_silence_frame_is_twenty_ms_of_mulaw_silence() -> None:
    """160 bytes of 0xFF, base64, the same shape as a Twilio media payload."""
    assert base64.b64decode(SILENCE_FRAME) == b"\xff" * 160


def test_nothing_is_injected_while_the_caller_frames_keep_time() -> None:
    """A steady 20 ms cadence, even with 60 ms of jitter, never triggers silence."""
    clock = InputClock()
    clock.start(T0)
    t = feed(clock, T0, 2.0)
    assert clock.silence_due(t + 0.06) == 0
    assert clock.silence_sent_ms == 0


def test_a_one_second_stall_is_filled_in_real_time() -> None:
    """After the slack, the missing time is filled, then one frame per 20 ms, never ahead."""
    clock = InputClock(slack_ms=100)
    clock.start(T0)
    t = feed(clock, T0, 1.0)
    fills = run_until(clock, t, t + 1.0)
    first_time, first_frames = fills[0]
    assert abs(first_time - (t + 0.101)) < 1e-6
    assert first_frames == 5
    assert all(frames == 1 for _, frames in fills[1:])
    assert clock.silence_sent_ms >= 980  # the whole second, within a frame
    sent_by_end = 1000 + clock.silence_sent_ms
    assert sent_by_end <= 2000 + FRAME_MS  # never more than real time


def test_the_caller_coming_back_stops_the_fill_and_a_burst_is_forwarded_not_doubled() -> None:
    """Late frames arriving in a burst after a stall build at most the allowed lead, so the
    next stall is filled after the usual slack again."""
    clock = InputClock(slack_ms=100, max_lead_ms=200)
    clock.start(T0)
    t = feed(clock, T0, 1.0)
    run_until(clock, t, t + 0.5)
    t += 0.5
    for _ in range(25):  # half a second of held-back frames arrives at once
        clock.caller_audio(FRAME_MS)
    assert clock.silence_due(t) == 0
    t = feed(clock, t, 1.0)
    wake = clock.next_wakeup
    assert wake is not None
    assert wake - t <= 0.2 + 0.101 + 1e-6


def test_before_the_stream_starts_and_after_it_stops_nothing_is_owed() -> None:
    """No stream, no clock: no wake-up and no silence."""
    clock = InputClock()
    assert clock.next_wakeup is None
    assert clock.silence_due(T0 + 5) == 0
    clock.caller_audio(20)
    clock.start(T0)
    clock.stop()
    assert clock.next_wakeup is None
    assert clock.silence_due(T0 + 5) == 0
