"""Reading and writing WAV files as 8 kHz μ-law or PCM16, with the standard library's `wave`.

Owns file formats only. Resampling here is linear interpolation, good enough to feed a WAV of any
rate into a simulated call; the bridge's own audio path never uses it.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from callbridge.audio.g711 import SAMPLE_RATE, pcm16_to_ulaw, ulaw_to_pcm16


def read_wav_ulaw(path: str | Path) -> bytes:
    """Read a PCM WAV (8/16-bit, any rate, mono or stereo) and return 8 kHz mono μ-law."""
    with wave.open(str(path), "rb") as wav:
        channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
        raw = wav.readframes(wav.getnframes())
    if width == 2:
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float64)
    elif width == 1:
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) * 256.0
    else:
        raise ValueError(f"{path}: {8 * width}-bit WAV is not supported; use 8- or 16-bit PCM")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return pcm16_to_ulaw(resample_linear(samples, rate, SAMPLE_RATE))


def resample_linear(
    samples: npt.NDArray[np.float64], src_rate: int, dst_rate: int
) -> npt.NDArray[np.float64]:
    """Linear-interpolation resampling of a whole signal (not streaming)."""
    if src_rate == dst_rate or samples.size == 0:
        return samples
    count = round(samples.size * dst_rate / src_rate)
    positions = np.arange(count) * (src_rate / dst_rate)
    resampled: npt.NDArray[np.float64] = np.interp(positions, np.arange(samples.size), samples)
    return resampled


def write_wav_ulaw_as_pcm16(path: str | Path, ulaw: bytes) -> None:
    """Write 8 kHz μ-law audio as a mono 16-bit PCM WAV that any player opens."""
    write_wav_pcm16(path, ulaw_to_pcm16(ulaw), SAMPLE_RATE)


def write_wav_pcm16(path: str | Path, samples: npt.ArrayLike, rate: int, channels: int = 1) -> None:
    """Write interleaved signed 16-bit samples to a WAV file."""
    data = np.clip(np.asarray(samples), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(data.tobytes())


def write_stereo_ulaw_as_pcm16(path: str | Path, left: bytes, right: bytes) -> float:
    """Write two 8 kHz μ-law tracks as a stereo 16-bit WAV (the shorter padded with silence);
    returns its length in seconds."""
    length = max(len(left), len(right))
    stereo = np.zeros((length, 2), dtype=np.int16)
    stereo[: len(left), 0] = ulaw_to_pcm16(left)
    stereo[: len(right), 1] = ulaw_to_pcm16(right)
    write_wav_pcm16(path, stereo.reshape(-1), SAMPLE_RATE, channels=2)
    return length / SAMPLE_RATE
