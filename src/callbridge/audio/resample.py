"""Streaming 8 kHz ⇄ 24 kHz conversion of call audio, for agents that talk PCM16 to the model.

Owns sample-rate conversion of PCM16 mono and the two paths built on it: Twilio's 8 kHz μ-law in
→ the 24 kHz PCM16 the OpenAI Realtime API takes as `{"type": "audio/pcm", "rate": 24000}`, and
the model's 24 kHz PCM16 out → 8 kHz μ-law for Twilio. Every object converts one direction of one
stream and keeps libsoxr's filter state between chunks, so a 20 ms frame boundary leaves no trace
in the output; resampling each chunk on its own instead clicks at every boundary.

Contract, for each direction:
- `process(data)` takes any amount of audio and returns what is ready. libsoxr works in blocks:
  with 20 ms frames in, HQ holds audio back 13–73 ms (43 ms on average) and then releases about
  61 ms at once. The output is aligned with the input — no group delay is left in it — and after
  `flush()` its length is the input's × the rate ratio, to within one sample.
- After a turn's last input, call `flush()`: it returns the held-back tail, and the object is
  ready for the next turn.
- After discarding audio (a barge-in clear), call `reset()`: it drops the held-back audio.

libsoxr runs in float32 here, not int16: its int16 output is TPDF-dithered from a seed it takes
from the clock, which would make the output differ from run to run by up to 2 LSB. In float32 the
output is the same, bit for bit, on every run and however the input is chunked; the conversions
cost about 2 µs per 20 ms frame. Figures and method: docs/audio.md.

No I/O. No clock (libsoxr reads one only to seed that int16 dither, which float32 never uses).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import soxr  # type: ignore[import-untyped]  # python-soxr ships no type information

from callbridge.audio.g711 import DECODE_TABLE, SAMPLE_RATE, pcm16_to_ulaw

PCMU_BYTES_PER_MS = 8
PCM16_24K_BYTES_PER_MS = 48
REALTIME_PCM_RATE = 24000
DEFAULT_QUALITY = "HQ"  # VHQ doubles the held-back audio for no gain after μ-law: docs/audio.md

_BYTES_PER_MS = {"pcmu": PCMU_BYTES_PER_MS, "pcm16": PCM16_24K_BYTES_PER_MS}
_LE_INT16 = np.dtype("<i2")
_DECODE_TO_FLOAT = DECODE_TABLE.astype(np.float32)  # μ-law code → sample, ready for libsoxr
_NO_FLOATS: npt.NDArray[np.float32] = np.zeros(0, dtype=np.float32)
_NO_SAMPLES: npt.NDArray[np.int16] = np.zeros(0, dtype=np.int16)
_INT16_MIN, _INT16_MAX = np.float32(-32768), np.float32(32767)

Samples = npt.NDArray[np.int16]
Floats = npt.NDArray[np.float32]


def bytes_per_ms(fmt: str) -> int:
    """Bytes of one millisecond of audio in an agent's `audio_format`: "pcmu" 8, "pcm16" 48."""
    try:
        return _BYTES_PER_MS[fmt]
    except KeyError:
        raise ValueError(f"unknown audio format {fmt!r}; expected 'pcmu' or 'pcm16'") from None


def _to_bytes(samples: Samples) -> bytes:
    """Samples as PCM16LE bytes (no copy beyond the result on a little-endian host)."""
    return samples.astype(_LE_INT16, copy=False).tobytes() if samples.size else b""


def _to_int16(resampled: Floats) -> Samples:
    """libsoxr's float output rounded and clipped to int16, working in place on `resampled`."""
    if not resampled.size:  # two calls in three, with 20 ms frames: libsoxr works in blocks
        return _NO_SAMPLES
    np.rint(resampled, out=resampled)
    resampled.clip(_INT16_MIN, _INT16_MAX, out=resampled)  # the method: half np.clip's overhead
    return resampled.astype(np.int16)


class _SampleAligner:
    """Turns a byte stream into whole int16 samples, carrying a split sample's first byte."""

    __slots__ = ("_odd",)

    def __init__(self) -> None:
        self._odd = b""

    def samples(self, data: bytes) -> Samples:
        if self._odd:
            data = self._odd + data  # only after an odd-length chunk, which is rare
        whole = len(data) & ~1
        self._odd = data[whole:]
        return np.frombuffer(data, dtype=_LE_INT16, count=whole // 2).astype(np.int16, copy=False)

    def clear(self) -> None:
        self._odd = b""


class StreamingResampler:
    """One direction of one PCM16 mono stream, `in_rate` to `out_rate`, state kept across calls.

    `quality` is a libsoxr recipe: "HQ" (the default) or "VHQ"; "QQ", "LQ" and "MQ" also work.
    `process()` takes PCM16LE bytes of any length: an odd trailing byte is kept and joined to the
    next call's first byte; `flush()` and `reset()` drop a byte still waiting for its pair.
    Raises ValueError for an unknown quality or a rate that is not positive.
    """

    __slots__ = ("_aligner", "_stream", "in_rate", "out_rate")

    def __init__(self, in_rate: int, out_rate: int, quality: str = DEFAULT_QUALITY) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype=np.float32, quality=quality)
        self._aligner = _SampleAligner()

    def process(self, pcm16: bytes) -> bytes:
        """Feed PCM16LE bytes; return the PCM16LE output that is ready (possibly none)."""
        return _to_bytes(self.process_samples(self._aligner.samples(pcm16)))

    def flush(self) -> bytes:
        """End the turn: return the held-back tail as PCM16LE; the next call starts a new turn."""
        return _to_bytes(self.flush_samples())

    def reset(self) -> None:
        """Drop all held-back audio, as after a barge-in clear; the next call starts a new turn."""
        self._stream.clear()
        self._aligner.clear()

    def process_samples(self, samples: Samples | Floats) -> Samples:
        """`process()` for an array of int16 samples (or float32 on the int16 scale)."""
        if samples.size == 0:
            return _NO_SAMPLES
        resampled: Floats = self._stream.resample_chunk(samples.astype(np.float32, copy=False))
        return _to_int16(resampled)

    def flush_samples(self) -> Samples:
        """`flush()` returning an int16 array."""
        tail: Floats = self._stream.resample_chunk(_NO_FLOATS, last=True)
        self.reset()
        return _to_int16(tail)

    def pending_ms(self) -> float:
        """Audio fed in but not yet returned, in milliseconds: what `flush()` would return now."""
        pending: float = self._stream.delay()
        return pending * 1000.0 / self.out_rate


class UlawToPcm24k:
    """Caller → model: Twilio's 8 kHz μ-law bytes in, 24 kHz PCM16LE bytes out."""

    __slots__ = ("_resampler",)

    def __init__(self, quality: str = DEFAULT_QUALITY) -> None:
        self._resampler = StreamingResampler(SAMPLE_RATE, REALTIME_PCM_RATE, quality)

    def process(self, ulaw: bytes) -> bytes:
        """Feed μ-law bytes (any length); return the 24 kHz PCM16LE that is ready."""
        codes = np.frombuffer(ulaw, dtype=np.uint8)
        return _to_bytes(self._resampler.process_samples(_DECODE_TO_FLOAT[codes]))

    def flush(self) -> bytes:
        """End the turn: return the held-back tail as 24 kHz PCM16LE."""
        return self._resampler.flush()

    def reset(self) -> None:
        """Drop all held-back audio."""
        self._resampler.reset()

    def pending_ms(self) -> float:
        """Audio fed in but not yet returned, in milliseconds."""
        return self._resampler.pending_ms()


class Pcm24kToUlaw:
    """Model → caller: 24 kHz PCM16LE bytes in (any length, even odd), 8 kHz μ-law bytes out.

    A Realtime audio delta may end in the middle of a sample; its first byte waits for the next
    delta. `flush()` and `reset()` drop such a byte, since a turn never ends mid-sample.
    """

    __slots__ = ("_aligner", "_resampler")

    def __init__(self, quality: str = DEFAULT_QUALITY) -> None:
        self._aligner = _SampleAligner()
        self._resampler = StreamingResampler(REALTIME_PCM_RATE, SAMPLE_RATE, quality)

    def process(self, pcm: bytes) -> bytes:
        """Feed 24 kHz PCM16LE bytes; return the μ-law bytes that are ready (one per sample)."""
        ready = self._resampler.process_samples(self._aligner.samples(pcm))
        return pcm16_to_ulaw(ready) if ready.size else b""

    def flush(self) -> bytes:
        """End the turn: return the held-back tail as μ-law."""
        self._aligner.clear()
        return pcm16_to_ulaw(self._resampler.flush_samples())

    def reset(self) -> None:
        """Drop all held-back audio, including half a sample."""
        self._aligner.clear()
        self._resampler.reset()

    def pending_ms(self) -> float:
        """Audio fed in but not yet returned, in milliseconds."""
        return self._resampler.pending_ms()
