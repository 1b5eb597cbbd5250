"""Keeping GPT-Live's input continuous: μ-law silence in real time when the caller's frames stall.

GPT-Live's session clock advances with the input audio it receives; when input stops, the clock
stops, and with it the model's pending acknowledgements and replies. Twilio normally sends a 20 ms
frame every 20 ms, but a network stall can hold them back for a second or more. This machine
tracks how much caller audio went upstream against the time since the stream started and, once
the input is more than `slack_ms` behind real time, says how many 20 ms silence frames to send to
catch up — then one more every 20 ms while the stall lasts, never a burst ahead of real time.
Late frames that arrive in a burst after a stall are still forwarded (they are the caller's words);
the lead they build is forgiven beyond `max_lead_ms`, so one burst does not delay the next fill.

Its owner calls `caller_audio` for every frame it forwards, `silence_due` at each wake-up, and
asks for a wake-up at `next_wakeup`. No I/O. No clock: every entry point takes `now` in seconds.
"""

from __future__ import annotations

import base64

FRAME_MS = 20
SILENCE_FRAME = base64.b64encode(b"\xff" * 160).decode("ascii")  # 20 ms of μ-law silence


class InputClock:
    """Caller audio sent upstream, measured against real time since the stream started."""

    def __init__(self, slack_ms: int = 100, max_lead_ms: int = 200) -> None:
        self._slack_ms = slack_ms
        self._max_lead_ms = max_lead_ms
        self._anchor: float | None = None  # when position 0 was due
        self._sent_ms = 0
        self._filling = False  # a stall is being filled: one frame per 20 ms, no more slack
        self.silence_sent_ms = 0  # in total, for the record and the tests

    def start(self, now: float) -> None:
        """The caller's stream started: input is owed from `now` on."""
        self._anchor = now
        self._sent_ms = 0

    def caller_audio(self, ms: int) -> None:
        """`ms` of the caller's own audio went upstream (on the media path: no clock needed)."""
        if self._anchor is None:
            return
        self._sent_ms += ms
        self._filling = False

    def silence_due(self, now: float) -> int:
        """How many 20 ms silence frames to send now (0 while the caller's audio keeps up);
        after calling this, send them and re-read `next_wakeup`."""
        if self._anchor is None:
            return 0
        behind = self._due_ms(now) - self._sent_ms
        if -behind > self._max_lead_ms:  # a burst of late frames: forgive the lead it built
            self._anchor -= (-behind - self._max_lead_ms) / 1000
            behind = -self._max_lead_ms
        if behind < self._allowed_ms():
            return 0
        self._filling = True
        frames = behind // FRAME_MS
        self._sent_ms += frames * FRAME_MS
        self.silence_sent_ms += frames * FRAME_MS
        return frames

    def time_of(self, position_ms: float) -> float | None:
        """When the input reached `position_ms` (the model's session clock advances with its
        input, sent in real time from `start`), on the session's clock; None before `start`."""
        return None if self._anchor is None else self._anchor + position_ms / 1000

    def stop(self) -> None:
        """The stream ended: nothing more is owed."""
        self._anchor = None

    @property
    def next_wakeup(self) -> float | None:
        """When silence becomes due if no caller audio arrives before then."""
        if self._anchor is None:
            return None
        return self._anchor + (self._sent_ms + self._allowed_ms()) / 1000

    def _allowed_ms(self) -> int:
        return FRAME_MS if self._filling else self._slack_ms + 1

    def _due_ms(self, now: float) -> int:
        assert self._anchor is not None
        return round((now - self._anchor) * 1000)  # round: waking at next_wakeup must fire
