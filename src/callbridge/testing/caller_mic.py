"""The fake caller's microphone: queued speech cut into 20 ms μ-law frames, silence in between.

Owns what the caller says and when it said it. Speech is queued as utterances, back to back; frame
k carries media time [20k, 20k + 20) ms and takes the next 160 bytes of queued speech, padded with
silence (0xFF), so a line with nothing queued sends silence like a real phone. Each utterance gets
exact call-clock start and end times from its byte positions in the frames.

The caller decides when frame k is sent; this module only computes. No I/O. No clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from callbridge.audio.g711 import FRAME_BYTES, SAMPLE_RATE, SILENCE_BYTE

FRAME_SECONDS = FRAME_BYTES / SAMPLE_RATE  # 0.02 s of media per frame


@dataclass(slots=True)
class _Utterance:
    number: int
    start_offset: int  # byte position in the caller's speech stream
    end_offset: int
    start: float | None = None  # call-clock time of its first byte, once framed


class Microphone:
    """Caller speech waiting to be framed, and the record of what has been said."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._queued = 0  # bytes of speech ever queued
        self._framed = 0  # bytes of speech ever put into frames
        self._pending: deque[_Utterance] = deque()
        self.utterances: list[tuple[float, float]] = []  # (start, end) of each finished utterance
        self.spoken_until = 0.0  # end of the last finished utterance

    def queue(self, ulaw: bytes) -> int:
        """Queue speech behind what is already queued; returns the utterance's number."""
        number = len(self.utterances) + len(self._pending)
        self._pending.append(_Utterance(number, self._queued, self._queued + len(ulaw)))
        self._queued += len(ulaw)
        self._buffer += ulaw
        return number

    @property
    def pending(self) -> list[int]:
        """Numbers of the utterances not yet completely framed."""
        return [utterance.number for utterance in self._pending]

    def frame(self, index: int) -> tuple[bytes, list[int]]:
        """Frame `index`'s 160 bytes, and the numbers of the utterances that end in it."""
        speech = bytes(self._buffer[:FRAME_BYTES])
        del self._buffer[:FRAME_BYTES]
        first = self._framed
        self._framed += len(speech)
        finished = self._stamp(index * FRAME_SECONDS, first)
        return speech + bytes([SILENCE_BYTE]) * (FRAME_BYTES - len(speech)), finished

    def _stamp(self, frame_start: float, first: int) -> list[int]:
        def at(offset: int) -> float:
            return frame_start + (offset - first) / SAMPLE_RATE

        for utterance in self._pending:
            if utterance.start_offset >= self._framed:
                break
            if utterance.start is None:
                utterance.start = at(utterance.start_offset)
        finished = []
        while self._pending and self._pending[0].end_offset <= self._framed:
            utterance = self._pending.popleft()
            end = at(utterance.end_offset)
            self.utterances.append((end if utterance.start is None else utterance.start, end))
            self.spoken_until = max(self.spoken_until, end)
            finished.append(utterance.number)
        return finished
