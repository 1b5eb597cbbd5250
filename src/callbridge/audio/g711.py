"""G.711 μ-law ⇄ linear PCM16, table-driven with numpy.

Owns the codec only: 8-bit μ-law bytes in, signed 16-bit samples out and back. Twilio Media Streams
carry μ-law at 8 kHz mono, one byte per sample, so 160 bytes are 20 ms. No I/O. No clock.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 8000
BYTES_PER_MS = 8
FRAME_BYTES = 160  # 20 ms
SILENCE_BYTE = 0xFF  # μ-law code for zero amplitude

_BIAS = 0x84
_CLIP = 32635


def _build_decode_table() -> npt.NDArray[np.int16]:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def _build_encode_table() -> npt.NDArray[np.uint8]:
    """μ-law code for every 16-bit sample value, indexed by ``sample + 32768``."""
    samples = np.arange(-32768, 32768, dtype=np.int32)
    sign = np.where(samples < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(samples), _CLIP) + _BIAS
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    exponent = np.clip(exponent, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    codes: npt.NDArray[np.uint8] = (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)
    return codes


DECODE_TABLE = _build_decode_table()
ENCODE_TABLE = _build_encode_table()
# The same table indexed by the sample's raw 16 bits (int16 viewed as uint16): 0..32767 are the
# non-negative samples, 32768..65535 the negative ones. Lets an int16 array encode in one lookup.
_ENCODE_BY_BITS: npt.NDArray[np.uint8] = np.roll(ENCODE_TABLE, 32768)


def ulaw_to_pcm16(data: bytes) -> npt.NDArray[np.int16]:
    """Decode μ-law bytes to signed 16-bit samples (a new array, one sample per byte)."""
    return DECODE_TABLE[np.frombuffer(data, dtype=np.uint8)]


def pcm16_to_ulaw(samples: npt.ArrayLike) -> bytes:
    """Encode signed 16-bit samples (any integer or float array, clipped to int16) to μ-law.

    An int16 array (the hot path: a resampler's output) takes one table lookup and no copies
    besides the result; anything else is clipped to the int16 range first.
    """
    if isinstance(samples, np.ndarray) and samples.dtype == np.int16:
        codes: npt.NDArray[np.uint8] = _ENCODE_BY_BITS[samples.view(np.uint16)]
        return codes.tobytes()
    values = np.clip(np.asarray(samples), -32768, 32767).astype(np.int32)
    return bytes(ENCODE_TABLE[values + 32768].tobytes())


def ulaw_ms(nbytes: int) -> float:
    """Duration in milliseconds of ``nbytes`` of 8 kHz μ-law."""
    return nbytes / BYTES_PER_MS
