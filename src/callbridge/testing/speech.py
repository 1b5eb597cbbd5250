"""Audio for simulated calls: speech from espeak-ng when installed, speech-like signal otherwise.

Owns making μ-law audio (8 kHz mono) from text or a duration. `speak()` shells out to Debian's
`espeak-ng` and `sox`; without them it falls back to `speechlike()`, a voiced signal with a syllable
rhythm whose energy any VAD treats as speech, so tests run everywhere.
"""

from __future__ import annotations

import functools
import random
import shutil
import subprocess
import zlib

import numpy as np

from callbridge.audio.g711 import SAMPLE_RATE, SILENCE_BYTE, pcm16_to_ulaw


def have_espeak() -> bool:
    """True when both `espeak-ng` and `sox` are on PATH."""
    return shutil.which("espeak-ng") is not None and shutil.which("sox") is not None


@functools.lru_cache(maxsize=256)
def speak(text: str, *, words_per_minute: int = 175, voice: str = "en-us") -> bytes:
    """Speak `text` into 8 kHz μ-law; a speech-like signal of matching length without espeak-ng."""
    if not have_espeak():
        return speechlike(estimated_seconds(text, words_per_minute), seed=zlib.crc32(text.encode()))
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(words_per_minute), "--stdout", text],
        check=True, capture_output=True, timeout=30,
    ).stdout
    ulaw = subprocess.run(
        # -D: no dither, so the same text always gives the same bytes. The silence effects trim
        # espeak's leading and trailing silence, so an utterance ends where the speech ends.
        ["sox", "-D", "-t", "wav", "-", "-r", str(SAMPLE_RATE), "-c", "1", "-t", "ul", "-",
         "silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%", "reverse"],
        input=wav, check=True, capture_output=True, timeout=30,
    ).stdout
    return ulaw


def estimated_seconds(text: str, words_per_minute: int = 175) -> float:
    """How long `text` takes to say at `words_per_minute` (at least 0.3 s)."""
    return max(0.3, len(text.split()) * 60.0 / words_per_minute)


def speechlike(seconds: float, *, seed: int = 0, level: float = 0.3) -> bytes:
    """A voiced, syllable-rhythm signal of `seconds` in μ-law; deterministic for a given seed.

    Each ~200 ms syllable has a pitch between 100 and 220 Hz with three harmonics and a
    raised-cosine envelope; a little noise keeps every 20 ms frame distinct, so audio can be traced
    through a call.
    """
    rng = random.Random(seed)
    total = int(seconds * SAMPLE_RATE)
    out = np.zeros(total, dtype=np.float64)
    pos = 0
    while pos < total:
        length = min(total - pos, int(rng.uniform(0.14, 0.26) * SAMPLE_RATE))
        t = np.arange(length) / SAMPLE_RATE
        pitch = rng.uniform(100.0, 220.0)
        voiced = sum(np.sin(2 * np.pi * pitch * k * t) / k for k in (1, 2, 3))
        envelope = 0.55 - 0.45 * np.cos(2 * np.pi * np.arange(length) / max(length, 1))
        out[pos : pos + length] = voiced * envelope
        pos += length
    noise = np.random.default_rng(seed).normal(0.0, 0.02, total)
    return pcm16_to_ulaw((out / 1.84 + noise) * level * 32767)


def silence(seconds: float) -> bytes:
    """`seconds` of μ-law digital silence."""
    return bytes([SILENCE_BYTE]) * int(seconds * SAMPLE_RATE)


def tone(seconds: float, frequency: float = 440.0, level: float = 0.3) -> bytes:
    """A sine tone in μ-law."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return pcm16_to_ulaw(np.sin(2 * np.pi * frequency * t) * level * 32767)
