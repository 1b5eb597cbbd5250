"""Audio for the fake Realtime server: session formats, the input buffer and an energy VAD.

Owns converting between the session's wire formats and the fake's canonical audio (8 kHz μ-law,
what Twilio carries), and detecting speech on the input audio clock. Supported formats are
`audio/pcmu` (1 byte = 0.125 ms) and `audio/pcm` at 24 kHz (PCM16LE, 48 bytes = 1 ms).

The VAD decides per 20 ms window: speech when the window's RMS level in dBFS is above a threshold.
`threshold_dbfs()` maps the API's `server_vad.threshold` (0..1) linearly onto dBFS, 60 dB wide,
centred on the server's configured level: with the default -40 dBFS, 0.0 → -70 dBFS, 0.5 → -40 dBFS,
1.0 → -10 dBFS (higher needs louder audio, like the real API).
Speech starts after `start_ms` of consecutive speech windows; `audio_start_ms` is the first speech
window minus `prefix_padding_ms` (never before the end of the previous turn). Speech stops after
`silence_duration_ms` of consecutive non-speech; `audio_end_ms` is where that silence began.
No I/O. No clock: time is the amount of audio received.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from callbridge.audio.g711 import pcm16_to_ulaw, ulaw_to_pcm16

PCMU = "audio/pcmu"
PCM = "audio/pcm"
SUPPORTED_FORMATS = frozenset({PCMU, PCM})
WINDOW_MS = 20.0
PCM_RATE = 24_000
_BYTES_PER_MS = {PCMU: 8.0, PCM: 48.0}
_RATE = {PCMU: 8_000, PCM: PCM_RATE}
_KEEP_IDLE_AUDIO_MS = 2000.0  # input kept while nobody speaks, enough for any prefix padding


def format_type(fmt: Mapping[str, Any] | None) -> str:
    """The `type` of a session audio format object (`audio/pcm` when unset, the API default)."""
    return str((fmt or {}).get("type") or PCM)


def bytes_to_ms(nbytes: int, fmt: str) -> float:
    """Duration in ms of `nbytes` of audio in format `fmt`."""
    return nbytes / _BYTES_PER_MS[fmt]


def threshold_dbfs(threshold: float, centre_dbfs: float) -> float:
    """Map `server_vad.threshold` (0..1, default 0.5) onto a dBFS level around `centre_dbfs`."""
    return centre_dbfs + (min(max(threshold, 0.0), 1.0) - 0.5) * 60.0


def encode_output(ulaw: bytes, fmt: str) -> bytes:
    """Canonical μ-law 8 kHz → wire bytes in `fmt` (PCM: 8→24 kHz by linear interpolation)."""
    if fmt == PCMU:
        return ulaw
    samples = ulaw_to_pcm16(ulaw).astype(np.float64)
    if samples.size == 0:
        return b""
    positions = np.arange(samples.size * 3) / 3.0
    upsampled = np.interp(positions, np.arange(samples.size), samples)
    return bytes(np.round(upsampled).astype("<i2").tobytes())


class InputDecoder:
    """Decodes `input_audio_buffer.append` payloads of one format; keeps a dangling PCM byte."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.rate = _RATE[fmt]
        self._pending = b""

    def decode(self, data: bytes) -> tuple[npt.NDArray[np.int16], bytes]:
        """Return (samples at `self.rate`, the same audio as canonical 8 kHz μ-law)."""
        if self.fmt == PCMU:
            return ulaw_to_pcm16(data), data
        data = self._pending + data
        usable = len(data) - len(data) % 2
        self._pending = data[usable:]
        samples = np.frombuffer(data[:usable], dtype="<i2").astype(np.int16)
        return samples, pcm16_to_ulaw(samples[::3])


class InputBuffer:
    """The uncommitted input audio as canonical μ-law, positioned on the input audio clock (ms)."""

    def __init__(self) -> None:
        self._data = bytearray()
        self.start_ms = 0.0

    @property
    def end_ms(self) -> float:
        return self.start_ms + len(self._data) / 8

    @property
    def buffered_ms(self) -> float:
        return len(self._data) / 8

    def append(self, ulaw: bytes) -> None:
        self._data += ulaw

    def take(self, start_ms: float, end_ms: float) -> bytes:
        """Return the audio between two clock positions and drop everything before `end_ms`."""
        first = max(0, round((start_ms - self.start_ms) * 8))
        last = max(first, round((end_ms - self.start_ms) * 8))
        taken = bytes(self._data[first:last])
        self.drop_before(end_ms)
        return taken

    def drop_before(self, ms: float) -> None:
        cut = min(len(self._data), max(0, round((ms - self.start_ms) * 8)))
        del self._data[:cut]
        self.start_ms += cut / 8

    def clear(self) -> None:
        self.start_ms = self.end_ms
        self._data.clear()


@dataclass(frozen=True, slots=True)
class VadSettings:
    threshold_dbfs: float
    start_ms: float
    prefix_padding_ms: float
    silence_duration_ms: float


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    audio_start_ms: int


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    audio_end_ms: int


VadEvent = SpeechStarted | SpeechStopped


def vad_settings(
    detection: Mapping[str, Any] | None,
    *,
    centre_dbfs: float,
    start_ms: float,
    silence_duration_ms: float,
) -> VadSettings | None:
    """VAD settings for a session's `turn_detection`; None turns VAD off.

    semantic_vad is treated as server_vad with 500 ms of silence.
    """
    if detection is None:
        return None
    semantic = detection.get("type") == "semantic_vad"
    return VadSettings(
        threshold_dbfs=threshold_dbfs(float(detection.get("threshold", 0.5)), centre_dbfs),
        start_ms=start_ms,
        prefix_padding_ms=float(detection.get("prefix_padding_ms", 300)),
        silence_duration_ms=(
            500.0 if semantic else float(detection.get("silence_duration_ms", silence_duration_ms))
        ),
    )


class EnergyVad:
    """Speech detection by RMS level per 20 ms window; feed samples, get events in order."""

    def __init__(self, settings: VadSettings, rate: int, clock_ms: float = 0.0) -> None:
        self.settings = settings
        self.speaking = False
        self._window = round(rate * WINDOW_MS / 1000)
        self._residual = np.zeros(0, dtype=np.int16)
        self._clock_ms = clock_ms  # start of the next complete window
        self._floor_ms = clock_ms  # speech cannot start before this (end of the previous turn)
        self._run_start: float | None = None
        self._silence_start: float | None = None

    def receive_samples(self, samples: npt.NDArray[np.int16]) -> list[VadEvent]:
        data = np.concatenate((self._residual, samples)) if self._residual.size else samples
        count = data.size // self._window
        self._residual = data[count * self._window :].copy()
        if count == 0:
            return []
        windows = data[: count * self._window].astype(np.float64).reshape(count, self._window)
        rms = np.sqrt(np.mean(windows * windows, axis=1))
        levels = 20.0 * np.log10(np.maximum(rms, 1e-3) / 32768.0)
        events: list[VadEvent] = []
        for speech in (levels > self.settings.threshold_dbfs).tolist():
            event = self._step(bool(speech))
            if event is not None:
                events.append(event)
            self._clock_ms += WINDOW_MS
        return events

    def reset(self, clock_ms: float) -> None:
        """Forget any turn in progress (buffer cleared or committed by hand)."""
        self.speaking = False
        self._run_start = self._silence_start = None
        self._floor_ms = clock_ms

    def _step(self, speech: bool) -> VadEvent | None:
        now, window_end = self._clock_ms, self._clock_ms + WINDOW_MS
        if not self.speaking:
            if not speech:
                self._run_start = None
                return None
            if self._run_start is None:
                self._run_start = now
            if window_end - self._run_start < self.settings.start_ms:
                return None
            self.speaking, self._silence_start = True, None
            start = max(self._floor_ms, self._run_start - self.settings.prefix_padding_ms)
            return SpeechStarted(audio_start_ms=int(start))
        if speech:
            self._silence_start = None
            return None
        if self._silence_start is None:
            self._silence_start = now
        if window_end - self._silence_start < self.settings.silence_duration_ms:
            return None
        end = self._silence_start
        self.reset(end)
        return SpeechStopped(audio_end_ms=int(end))


@dataclass(frozen=True, slots=True)
class TurnStarted:
    """VAD heard the caller start; `item_id` will name the committed user item."""

    audio_start_ms: int
    item_id: str


@dataclass(frozen=True, slots=True)
class TurnEnded:
    """The caller's turn is over (VAD or manual commit): `audio` is the turn as μ-law."""

    audio_end_ms: int
    item_id: str
    audio: bytes


class InputAudio:
    """The input side of a session: decodes appends, keeps the buffer, runs the VAD.

    `receive()` returns the turn events to announce, in order. Ids come from `new_item_id`.
    """

    def __init__(self, fmt: str, settings: VadSettings | None, new_item_id: Callable[[], str]):
        self._new_item_id = new_item_id
        self._decoder = InputDecoder(fmt)
        self._buffer = InputBuffer()
        self._vad: EnergyVad | None = None
        self._turn: TurnStarted | None = None
        self.configure(fmt, settings)

    @property
    def buffered_ms(self) -> float:
        return self._buffer.buffered_ms

    def configure(self, fmt: str, settings: VadSettings | None) -> None:
        """Apply a session change; the clock and any turn in progress carry on."""
        if fmt != self._decoder.fmt:
            self._decoder, self._vad = InputDecoder(fmt), None
        if settings is None:
            self._vad = None
        elif self._vad is None:
            self._vad = EnergyVad(settings, self._decoder.rate, clock_ms=self._buffer.end_ms)
        else:
            self._vad.settings = settings

    def receive(self, data: bytes) -> list[TurnStarted | TurnEnded]:
        samples, ulaw = self._decoder.decode(data)
        self._buffer.append(ulaw)
        if self._vad is None:
            return []
        out: list[TurnStarted | TurnEnded] = []
        for event in self._vad.receive_samples(samples):
            if isinstance(event, SpeechStarted):
                self._turn = TurnStarted(event.audio_start_ms, self._new_item_id())
                out.append(self._turn)
            else:
                out.append(self._end_turn(event.audio_end_ms))
        if not self._vad.speaking:
            self._buffer.drop_before(self._buffer.end_ms - _KEEP_IDLE_AUDIO_MS)
        return out

    def commit(self) -> TurnEnded:
        """Commit everything buffered as one turn (`input_audio_buffer.commit`)."""
        if self._turn is None:
            self._turn = TurnStarted(int(self._buffer.start_ms), self._new_item_id())
        else:
            self._turn = TurnStarted(int(self._buffer.start_ms), self._turn.item_id)
        ended = self._end_turn(int(self._buffer.end_ms))
        if self._vad is not None:
            self._vad.reset(self._buffer.end_ms)
        return ended

    def clear(self) -> None:
        self._buffer.clear()
        self._turn = None
        if self._vad is not None:
            self._vad.reset(self._buffer.end_ms)

    def _end_turn(self, audio_end_ms: int) -> TurnEnded:
        turn = self._turn or TurnStarted(audio_end_ms, self._new_item_id())
        self._turn = None
        audio = self._buffer.take(turn.audio_start_ms, audio_end_ms)
        return TurnEnded(audio_end_ms, turn.item_id, audio)
