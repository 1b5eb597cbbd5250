"""The as-heard recording of a call: two tracks on the call's media clock — the caller as Twilio
delivered them, and the agent as Twilio played it (audio discarded by `clear` never appears).

Owns placing audio at the right time: caller frames at their media timestamps, agent chunks so
they end when Twilio confirmed them played (a mark echo) or, for the chunk a `clear` cut, from
where it started to the moment of the clear. μ-law in memory (8 kB per second per track) with a
length cap; the adapter writes the file at the end of the call. No I/O. No clock.
"""

from __future__ import annotations

import base64
import binascii

from callbridge.audio.g711 import BYTES_PER_MS, SILENCE_BYTE

MAX_SECONDS = 3600  # one hour of both tracks is 57.6 MB of μ-law


class AsHeardTimeline:
    def __init__(self, max_seconds: int = MAX_SECONDS) -> None:
        self.caller = bytearray()
        self.agent = bytearray()
        self._limit = max_seconds * 1000 * BYTES_PER_MS

    def caller_frame(self, timestamp_ms: int, payload: str) -> None:
        """A caller frame as Twilio sent it (base64 μ-law) at its media timestamp."""
        try:
            audio = base64.b64decode(payload)
        except (binascii.Error, ValueError):
            return
        _place(self.caller, timestamp_ms * BYTES_PER_MS, audio, self._limit)

    def agent_played(self, audio: bytes, end_ms: int) -> None:
        """Agent audio that finished playing at media time `end_ms`."""
        _place(self.agent, end_ms * BYTES_PER_MS - len(audio), audio, self._limit)

    def seconds(self) -> float:
        return max(len(self.caller), len(self.agent)) / (1000 * BYTES_PER_MS)


def _place(track: bytearray, offset: int, audio: bytes, limit: int) -> None:
    if offset < 0:
        audio, offset = audio[-offset:], 0
    end = min(offset + len(audio), limit)
    if end <= offset:
        return
    if len(track) < end:
        track.extend(bytes([SILENCE_BYTE]) * (end - len(track)))
    track[offset:end] = audio[: end - offset]
