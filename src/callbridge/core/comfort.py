"""Comfort sound: what the caller hears instead of dead air while the agent waits on a slow tool
or the upstream reconnects.

Owns the sounds (pure functions of their name; μ-law, 8 kHz, a loop of a few seconds): `tone`, a
soft two-note chime every two and a half seconds, and `noise`, low-level comfort noise as phone
networks use. The session plays them as a pseudo-item that is never truncated or transcribed and
is cleared the instant real agent audio arrives. No I/O. No clock.
"""

from __future__ import annotations

import functools
from typing import Literal

import numpy as np

from callbridge.audio.g711 import SAMPLE_RATE, pcm16_to_ulaw

ComfortSound = Literal["tone", "noise", "off"]
COMFORT_ITEM = "__comfort__"


@functools.cache
def comfort_loop(kind: ComfortSound) -> bytes:
    """The loop of `kind` as μ-law (a whole number of 20 ms frames); empty for "off"."""
    if kind == "off":
        return b""
    length = int(2.5 * SAMPLE_RATE)
    if kind == "noise":
        samples = np.random.default_rng(7).normal(0.0, 32768 * 10 ** (-55 / 20), length)
        return pcm16_to_ulaw(samples)
    t = np.arange(int(0.16 * SAMPLE_RATE)) / SAMPLE_RATE
    envelope = np.sin(np.pi * t / t[-1]) ** 2
    level = 32768 * 10 ** (-26 / 20)
    chime = np.concatenate([np.sin(2 * np.pi * 523.25 * t), np.sin(2 * np.pi * 659.25 * t)])
    samples = np.zeros(length)
    samples[: chime.size] = chime * np.concatenate([envelope, envelope]) * level
    return pcm16_to_ulaw(samples)
