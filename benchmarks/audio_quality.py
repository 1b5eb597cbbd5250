"""Quality and cost of the PCM16 24 kHz audio path: `python -m benchmarks.audio_quality`.

Compares the streaming converters of `callbridge.audio.resample` (libsoxr HQ, float32 inside)
with VHQ, with the same HQ stream run in int16, and with what some peers do, which is to resample
each 20 ms chunk on its own (soxr.resample or numpy.interp per chunk, no state):

- round trip μ-law 8 kHz → PCM16 24 kHz → μ-law 8 kHz, fed 20 ms at a time, against the μ-law
  original: SNR after delay compensation (the lag found), passband ripple 300–3400 Hz (log sine
  sweep only), and "edge err": error power within ±2 samples of each 20 ms boundary over the same
  mid-chunk, in dB (≈0 means the boundaries are invisible);
- each direction alone: clicks (mean |second difference| within ±2 samples of each 20 ms boundary
  over the same mid-chunk; ≈1.0 means no clicks), out-of-band energy (images above 4.2 kHz in the
  24 kHz output of the sweep; aliases of a 4.4–11 kHz sweep in the 8 kHz output), CPU µs per 20 ms
  frame (best of 25 rounds, taken in turns: this machine is shared and noisy), the audio held back
  inside the converter after each frame, and whether two converters give the same bytes.

Method and reading: docs/audio.md.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
import soxr  # type: ignore[import-untyped]  # python-soxr ships no type information

from benchmarks.hot_path import cpu_model
from callbridge.audio.g711 import pcm16_to_ulaw, ulaw_to_pcm16
from callbridge.audio.resample import Pcm24kToUlaw, UlawToPcm24k
from callbridge.testing.speech import have_espeak, speak, speechlike

Floats = npt.NDArray[np.float64]
Int16s = npt.NDArray[np.int16]
LOW, HIGH = 8000, 24000
FRAME_8K, FRAME_24K = 160, 480  # samples in 20 ms
FLOOR = 1e-12  # −120 dB: printed as "<-120", nothing measurable left
TEXT = ("Thanks for calling. I can help you reschedule an appointment, check on an order, "
        "or answer a question about your bill. What would you like to do today?")


class Converter(Protocol):
    def process(self, data: bytes, /) -> bytes: ...
    def flush(self) -> bytes: ...


def interp(x: Int16s, src: int, dst: int) -> Int16s:
    """Linear interpolation of one chunk, edges clamped: what numpy.interp per chunk gives."""
    if x.size == 0:
        return x
    positions = np.arange(round(x.size * dst / src)) * (src / dst)
    out: Int16s = np.round(np.interp(positions, np.arange(x.size), x)).astype(np.int16)
    return out


def soxr_oneshot(x: Int16s, src: int, dst: int) -> Int16s:
    """soxr.resample of one chunk on its own: the filter starts and ends at each chunk's edges."""
    out: Int16s = soxr.resample(x, src, dst, "HQ")
    return out


@dataclass
class PerChunkUp:
    """Peer-style caller → model: each μ-law chunk resampled alone."""

    resample: Callable[[Int16s, int, int], Int16s]

    def process(self, ulaw: bytes) -> bytes:
        return self.resample(ulaw_to_pcm16(ulaw), LOW, HIGH).tobytes()

    def flush(self) -> bytes:
        return b""


@dataclass
class PerChunkDown:
    """Peer-style model → caller: each 24 kHz chunk resampled alone."""

    resample: Callable[[Int16s, int, int], Int16s]

    def process(self, pcm: bytes) -> bytes:
        return pcm16_to_ulaw(self.resample(np.frombuffer(pcm, dtype=np.int16), HIGH, LOW))

    def flush(self) -> bytes:
        return b""


class Int16Up:
    """Our streaming path with libsoxr in int16, as first specified: its output is dithered."""

    def __init__(self) -> None:
        self.stream = soxr.ResampleStream(LOW, HIGH, 1, dtype=np.int16, quality="HQ")

    def process(self, ulaw: bytes) -> bytes:
        out: bytes = self.stream.resample_chunk(ulaw_to_pcm16(ulaw)).tobytes()
        return out

    def flush(self) -> bytes:
        out: bytes = self.stream.resample_chunk(np.zeros(0, np.int16), last=True).tobytes()
        return out


class Int16Down:
    """The model → caller direction of `Int16Up`."""

    def __init__(self) -> None:
        self.stream = soxr.ResampleStream(HIGH, LOW, 1, dtype=np.int16, quality="HQ")

    def process(self, pcm: bytes) -> bytes:
        return pcm16_to_ulaw(self.stream.resample_chunk(np.frombuffer(pcm, dtype=np.int16)))

    def flush(self) -> bytes:
        return pcm16_to_ulaw(self.stream.resample_chunk(np.zeros(0, np.int16), last=True))


METHODS: list[tuple[str, Callable[[], Converter], Callable[[], Converter]]] = [
    ("soxr HQ streaming (ours)", lambda: UlawToPcm24k("HQ"), lambda: Pcm24kToUlaw("HQ")),
    ("soxr VHQ streaming", lambda: UlawToPcm24k("VHQ"), lambda: Pcm24kToUlaw("VHQ")),
    ("soxr HQ streaming, int16", Int16Up, Int16Down),
    ("naive soxr.resample/chunk", lambda: PerChunkUp(soxr_oneshot),
     lambda: PerChunkDown(soxr_oneshot)),
    ("naive numpy.interp/chunk", lambda: PerChunkUp(interp), lambda: PerChunkDown(interp)),
]


def log_sweep(seconds: float, f0: float, f1: float, rate: int) -> tuple[Floats, Floats]:
    """A log sine sweep at 0.3 of full scale, and its instantaneous frequency per sample.

    20 ms raised-cosine fades at both ends keep the onset from splashing energy over all
    frequencies, which would otherwise swamp the out-of-band measurements.
    """
    t = np.arange(int(seconds * rate)) / rate
    k = np.log(f1 / f0) / seconds
    sweep = 0.3 * 32767 * np.sin(2 * np.pi * f0 * (np.exp(k * t) - 1) / k)
    fade = 0.5 - 0.5 * np.cos(np.pi * np.arange(rate // 50) / (rate // 50))
    sweep[: fade.size] *= fade
    sweep[-fade.size :] *= fade[::-1]
    return sweep, f0 * np.exp(k * t)


def stream(converter: Converter, data: bytes, frame: int) -> bytes:
    """Feed `data` in chunks of `frame` bytes, then flush: everything the converter gives."""
    out = [converter.process(data[i : i + frame]) for i in range(0, len(data), frame)]
    return b"".join([*out, converter.flush()])


def round_trip(up: Converter, down: Converter, ulaw: bytes) -> bytes:
    """μ-law → 24 kHz → μ-law, 20 ms at a time, each up-converted chunk sent straight down."""
    out = [down.process(up.process(ulaw[i : i + FRAME_8K])) for i in range(0, len(ulaw), FRAME_8K)]
    return b"".join([*out, down.process(up.flush()), down.flush()])


def aligned(ref: Floats, out: Floats, max_lag: int = 40) -> tuple[Floats, Floats, int]:
    """`ref` and `out` shifted by the lag (samples, found by cross-correlation) that best
    matches them, trimmed to a common length; `ref` keeps its first sample when the lag is ≥ 0."""
    n = min(ref.size, out.size) - 2 * max_lag
    middle = ref[max_lag : max_lag + n]
    lag = max(range(-max_lag, max_lag + 1),
              key=lambda k: float(np.dot(middle, out[max_lag + k : max_lag + k + n])))
    if lag < 0:
        raise ValueError(f"output leads the input by {-lag} samples")
    size = min(ref.size, out.size - lag)
    return ref[:size], out[lag : lag + size], lag


def snr_db(ref: Floats, out: Floats) -> float:
    """Signal-to-error ratio in dB; +inf when the output is the input exactly."""
    error = np.sum((out - ref) ** 2)
    return float("inf") if error == 0 else float(10 * np.log10(np.sum(ref**2) / error))


def ripple_db(ref: Floats, out: Floats, freq: Floats, window: int = FRAME_8K) -> float:
    """Spread (max − min) of the 20 ms-window gain, in dB, where the sweep is in 300–3400 Hz."""
    gains = []
    for start in range(0, min(ref.size, out.size) - window, window):
        if 300.0 <= freq[start + window // 2] <= 3400.0:
            r, o = ref[start : start + window], out[start : start + window]
            gains.append(10 * np.log10(np.sum(o**2) / np.sum(r**2)))
    return float(max(gains) - min(gains))


def boundary_distance(size: int, period: int, first: int = 0) -> npt.NDArray[np.int64]:
    """For each of `size` samples starting at index `first`, how far the nearest boundary is."""
    phase = (np.arange(size) + first) % period
    return np.minimum(phase, period - phase)


def click_ratio(x: Floats, period: int) -> float:
    """Mean |2nd difference| within ±2 samples of each chunk boundary ÷ the same mid-chunk."""
    d2 = np.abs(np.diff(x, 2))
    distance = boundary_distance(d2.size, period, first=1)  # d2[i] is centred on sample i + 1
    return float(d2[distance <= 2].mean() / d2[distance >= period // 4].mean())


def edge_error_db(ref: Floats, out: Floats, period: int) -> float:
    """Error power within ±2 samples of each chunk boundary over the same mid-chunk, in dB."""
    error, distance = (out - ref) ** 2, boundary_distance(ref.size, period)
    near, middle = error[distance <= 2].mean(), error[distance >= period // 4].mean()
    return float("nan") if middle == 0 else float(10 * np.log10(near / middle))


def out_of_band_db(x: Floats, rate: int, band: tuple[float, float]) -> float:
    """Energy in `band` (Hz) relative to the whole signal's, in dB (floored at −120)."""
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / rate)
    inside = spectrum[(freqs >= band[0]) & (freqs <= band[1])].sum()
    return float(10 * np.log10(max(inside / spectrum.sum(), FLOOR)))


def decoded(ulaw: bytes) -> Floats:
    return ulaw_to_pcm16(ulaw).astype(np.float64)


def pcm(data: bytes) -> Floats:
    return np.frombuffer(data, dtype=np.int16).astype(np.float64)


def us_per_frame(makers: list[tuple[Callable[[], Converter], bytes, int]],
                 rounds: int = 25) -> list[float]:
    """CPU time of `process()` per 20 ms frame for each (converter, data, frame size), averaged
    over the data and best of `rounds`. The converters take turns within each round, so warm-up
    and the neighbours' noise on this shared machine fall on all of them alike."""
    best = [float("inf")] * len(makers)
    for _ in range(rounds):
        for index, (make, data, frame) in enumerate(makers):
            frames = [data[i : i + frame] for i in range(0, len(data) - frame + 1, frame)]
            converter = make()
            start = time.process_time()
            for chunk in frames:
                converter.process(chunk)
            best[index] = min(best[index], (time.process_time() - start) / len(frames) * 1e6)
    return best


def held_back_ms(make: Callable[[], Converter], data: bytes, frame: int,
                 out_bytes_per_ms: int) -> tuple[float, float]:
    """Mean and max audio held inside the converter after each 20 ms frame (steady state)."""
    converter, given, lags = make(), 0, []
    for index, i in enumerate(range(0, len(data) - frame + 1, frame)):
        given += len(converter.process(data[i : i + frame]))
        if index >= 10:
            lags.append((index + 1) * 20 - given / out_bytes_per_ms)
    return float(np.mean(lags)), float(max(lags))


def repeatable(make: Callable[[], Converter], data: bytes, frame: int) -> str:
    """"yes" when two converters alive at once give the same bytes for the same input."""
    first, second = make(), make()
    return "yes" if stream(first, data, frame) == stream(second, data, frame) else "no"


def signals() -> dict[str, tuple[bytes, Floats | None]]:
    sweep, freq = log_sweep(6.0, 100.0, 3400.0, LOW)
    found: dict[str, tuple[bytes, Floats | None]] = {
        "log sweep 100–3400 Hz": (pcm16_to_ulaw(sweep), freq),
        "speechlike() 6 s": (speechlike(6.0, seed=7), None),
    }
    if have_espeak():
        found["espeak-ng speech"] = (speak(TEXT), None)
    return found


def db(value: float, width: int) -> str:
    """A dB figure for the table: "exact" for +inf, "<-120" at the floor, "—" for undefined."""
    if np.isnan(value):
        return f"{'—':>{width}}"
    if np.isinf(value):
        return f"{'exact':>{width}}"
    return f"{'<-120':>{width}}" if value <= -120 else f"{value:{width}.1f}"


def round_trip_rows() -> list[str]:
    rows = []
    for signal, (ulaw, freq) in signals().items():
        for name, up, down in METHODS:
            ref, out, lag = aligned(decoded(ulaw), decoded(round_trip(up(), down(), ulaw)))
            ripple = f"{ripple_db(ref, out, freq):8.3f}" if freq is not None else f"{'—':>8}"
            rows.append(f"{signal:<22} {name:<27} {db(snr_db(ref, out), 7)} {lag:>4} {ripple} "
                        f"{db(edge_error_db(ref, out, FRAME_8K), 9)}")
    return rows


def direction_rows() -> list[str]:
    sweep_ulaw = pcm16_to_ulaw(log_sweep(6.0, 100.0, 3400.0, LOW)[0])
    speech_ulaw = speechlike(6.0, seed=7)
    speech_24k = soxr.resample(ulaw_to_pcm16(speech_ulaw), LOW, HIGH, "VHQ").tobytes()
    high, _ = log_sweep(6.0, 4400.0, 11000.0, HIGH)
    high_24k = np.round(high).astype(np.int16).tobytes()
    costs = iter(us_per_frame([pair for _, up, down in METHODS for pair in
                               ((up, speech_ulaw, FRAME_8K), (down, speech_24k, 2 * FRAME_24K))]))
    rows = []
    for name, up, down in METHODS:
        images = out_of_band_db(pcm(stream(up(), sweep_ulaw, FRAME_8K)), HIGH, (4200, 12000))
        clicks = click_ratio(pcm(stream(up(), speech_ulaw, FRAME_8K)), FRAME_24K)
        mean, worst = held_back_ms(up, speech_ulaw, FRAME_8K, 48)
        rows.append(f"{name:<27} {'8k μ-law → 24k':<15} {clicks:7.2f} {db(images, 9)} "
                    f"{next(costs):8.1f} {mean:6.1f} {worst:6.1f} "
                    f"{repeatable(up, speech_ulaw, FRAME_8K):>6}")
        aliases = decoded(stream(down(), high_24k, 2 * FRAME_24K))
        alias_db = 10 * np.log10(max(float(np.mean(aliases**2) / np.mean(high**2)), FLOOR))
        clicks = click_ratio(decoded(stream(down(), speech_24k, 2 * FRAME_24K)), FRAME_8K)
        mean, worst = held_back_ms(down, speech_24k, 2 * FRAME_24K, 8)
        rows.append(f"{'':<27} {'24k → 8k μ-law':<15} {clicks:7.2f} {db(alias_db, 9)} "
                    f"{next(costs):8.1f} {mean:6.1f} {worst:6.1f} "
                    f"{repeatable(down, speech_24k, 2 * FRAME_24K):>6}")
    return rows


def main() -> None:
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, numpy {np.__version__}, "
          f"python-soxr {soxr.__version__} (libsoxr {soxr.__libsoxr_version__})")
    print("\nRound trip μ-law 8k → PCM16 24k → μ-law 8k, 20 ms chunks, vs the μ-law original")
    print(f"{'signal':<22} {'method':<27} {'SNR dB':>7} {'lag':>4} {'ripple':>8} "
          f"{'edge err':>9}")
    print("\n".join(round_trip_rows()))
    print("\nEach direction alone, 20 ms chunks (out-of-band: images above 4.2 kHz going up, "
          "aliases of a 4.4–11 kHz sweep going down)")
    print(f"{'method':<27} {'direction':<15} {'clicks':>7} {'oob dB':>9} {'µs/20ms':>8} "
          f"{'held back ms':>13} {'same':>6}")
    print(f"{'':<27} {'':<15} {'':>7} {'':>9} {'':>8} {'mean':>6} {'max':>6} {'twice':>6}")
    print("\n".join(direction_rows()))


if __name__ == "__main__":
    main()
