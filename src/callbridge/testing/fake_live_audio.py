"""The caller's side of a fake GPT-Live session: the session clock, input gaps, mute and the VAD.

GPT-Live consumes input continuously in real time and its session clock advances with input
frames: the clock here is the amount of μ-law received (8 bytes = 1 ms), so it stalls when input
stops. A gap is recorded when a frame arrives later than the audio already received could have
lasted (plus a jitter tolerance): that is the silence a bridge should have injected. While muted,
frames still advance the clock but the model hears silence. Speech detection is the Realtime
fake's `EnergyVad` (20 ms RMS windows), without prefix padding.
No I/O; wall time is passed in (seconds, any monotonic origin).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from callbridge.audio.g711 import ulaw_to_pcm16
from callbridge.testing.fake_realtime_audio import EnergyVad, SpeechStarted, VadSettings


@dataclass(frozen=True, slots=True)
class InputGap:
    """Input was missing for `missing_ms` (wall time) when the session clock stood at `at_ms`."""

    at_ms: float
    missing_ms: float


@dataclass(frozen=True, slots=True)
class CallerTurn:
    """A stretch of caller speech on the session clock, and its audio (μ-law)."""

    start_ms: float
    end_ms: float
    audio: bytes


class CallerInput:
    """Everything the caller sent, and what the model made of it.

    `receive()` returns the caller turns that ended with that frame. `in_turn` is true from the
    VAD's speech start to its end (silence included); `speaking_ms` is the voiced part of the
    current turn so far, from its start to its last frame above the threshold.
    """

    def __init__(self, *, threshold_dbfs: float, start_ms: float, silence_ms: float,
                 gap_tolerance_ms: float) -> None:
        self.audio = bytearray()
        self.clock_ms = 0.0
        self.gaps: list[InputGap] = []
        self.muted = False
        self.held = False  # a fixture is playing: input is dropped, the clock still runs
        self.muted_ranges: list[tuple[float, float | None]] = []
        self._tolerance_s = gap_tolerance_ms / 1000
        self._vad = EnergyVad(VadSettings(threshold_dbfs, start_ms, 0.0, silence_ms), 8000)
        self._threshold = threshold_dbfs
        self._speech_start: float | None = None
        self._last_voiced_ms = 0.0
        self._runs_out_at: float | None = None  # wall time when the received audio is used up

    @property
    def missing_ms(self) -> float:
        """Total time input was missing since the first frame (wall ms)."""
        return sum(gap.missing_ms for gap in self.gaps)

    @property
    def turn_start_ms(self) -> float | None:
        """Where the current caller turn began on the clock (None when the caller is quiet)."""
        return self._speech_start

    @property
    def in_turn(self) -> bool:
        return self._speech_start is not None

    @property
    def speaking_ms(self) -> float:
        if self._speech_start is None:
            return 0.0
        return max(0.0, self._last_voiced_ms - self._speech_start)

    def receive(self, ulaw: bytes, now: float) -> list[CallerTurn]:
        if self._runs_out_at is not None and now > self._runs_out_at + self._tolerance_s:
            self.gaps.append(InputGap(self.clock_ms, round((now - self._runs_out_at) * 1000, 1)))
        start = now if self._runs_out_at is None else max(now, self._runs_out_at)
        self._runs_out_at = start + len(ulaw) / 8000
        self.audio += ulaw
        self.clock_ms += len(ulaw) / 8
        deaf = self.muted or self.held
        heard = np.zeros(len(ulaw), dtype=np.int16) if deaf else ulaw_to_pcm16(ulaw)
        if heard.size and _dbfs(heard) > self._threshold:
            self._last_voiced_ms = self.clock_ms
        turns: list[CallerTurn] = []
        for event in self._vad.receive_samples(heard):
            if isinstance(event, SpeechStarted):
                self._speech_start = float(event.audio_start_ms)
            elif self._speech_start is not None:
                start_ms, end_ms = self._speech_start, float(event.audio_end_ms)
                audio = bytes(self.audio[round(start_ms * 8) : round(end_ms * 8)])
                turns.append(CallerTurn(start_ms, end_ms, audio))
                self._speech_start = None
        return turns

    def mute(self, muted: bool) -> None:
        if muted == self.muted:
            return
        self.muted = muted
        if muted:
            self.muted_ranges.append((self.clock_ms, None))
        else:
            start, _ = self.muted_ranges[-1]
            self.muted_ranges[-1] = (start, self.clock_ms)


def _dbfs(samples: npt.NDArray[np.int16]) -> float:
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    return 20.0 * math.log10(max(rms, 1e-3) / 32768.0)
