"""Twilio's outbound playback buffer as the fake caller models it, and the timeline it played.

Owns the rules of §1.5 of the Twilio reference, on the call clock (seconds of media time since the
`start` message): `media` is queued in arrival order and played at 8000 bytes per second; audio that
arrives while nothing is playing starts at once; a `mark` is due when all audio queued before it has
finished, or at once when nothing is queued; `clear` drops the queued audio on the spot and flushes
every pending mark as unplayed. Positions are whole samples (one μ-law byte each), so back-to-back
chunks stay exactly contiguous.

The caller reads the clock and passes `now` in; this module only computes. No I/O. No clock.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass

from callbridge.audio.g711 import SAMPLE_RATE, SILENCE_BYTE

_EARLY = 1e-3  # samples of slack: an event-loop timer may fire a hair before its deadline


@dataclass(frozen=True, slots=True)
class MarkEcho:
    """A mark Twilio sends back; `played` is False when a `clear` flushed it before its audio."""

    name: str
    played: bool


@dataclass(slots=True)
class _Chunk:
    start: int  # first sample on the call clock
    data: bytes  # cut short when a clear interrupts it

    @property
    def end(self) -> int:
        return self.start + len(self.data)


@dataclass(frozen=True, slots=True)
class _PendingMark:
    name: str
    due: int  # sample at which the audio queued before the mark has finished


def to_sample(t: float) -> int:
    """The sample index playing at call-clock time `t` (never negative)."""
    return max(0, math.floor(t * SAMPLE_RATE + _EARLY))


class Playback:
    """Twilio's outbound audio buffer for one stream, plus the record of everything it played."""

    def __init__(self) -> None:
        self._chunks: list[_Chunk] = []
        self._starts: list[int] = []  # chunk starts, for bisecting a long call
        self._marks: deque[_PendingMark] = deque()
        self._busy_until = 0  # sample where the queued audio ends
        self._stopped_at: int | None = None
        self.discarded_bytes = 0  # dropped by `clear`
        self.cut_off_bytes = 0  # still queued when the stream ended

    def add_audio(self, now: float, data: bytes) -> None:
        """Queue agent audio that arrived at `now`; it starts at once if nothing is playing."""
        if not data or self._stopped_at is not None:
            return
        start = max(self._busy_until, to_sample(now))
        self._chunks.append(_Chunk(start, data))
        self._starts.append(start)
        self._busy_until = start + len(data)

    def add_mark(self, now: float, name: str) -> list[MarkEcho]:
        """Queue a mark behind the audio sent before it; returns the echoes due now (in order)."""
        if self._stopped_at is not None:
            return []
        self._marks.append(_PendingMark(name, self._busy_until))
        return self.due_marks(now)

    def due_marks(self, now: float) -> list[MarkEcho]:
        """Pop the marks whose audio has finished playing by `now`, oldest first."""
        current = to_sample(now)
        echoes: list[MarkEcho] = []
        while self._marks and self._marks[0].due <= current:
            echoes.append(MarkEcho(self._marks.popleft().name, played=True))
        return echoes

    def clear(self, now: float) -> list[MarkEcho]:
        """Drop the audio not yet played at `now`; returns every pending mark's echo, due first."""
        echoes = self.due_marks(now)
        self.discarded_bytes += self._truncate(to_sample(now))
        echoes.extend(MarkEcho(mark.name, played=False) for mark in self._marks)
        self._marks.clear()
        return echoes

    def stop(self, now: float) -> None:
        """The stream ended at `now`: nothing more plays and pending marks are never echoed."""
        if self._stopped_at is not None:
            return
        self._stopped_at = to_sample(now)
        self.cut_off_bytes += self._truncate(self._stopped_at)
        self._marks.clear()

    def _truncate(self, cut: int) -> int:
        dropped = 0
        while self._chunks and self._chunks[-1].end > cut:
            chunk = self._chunks[-1]
            if chunk.start >= cut:
                dropped += len(chunk.data)
                self._chunks.pop()
                self._starts.pop()
            else:
                dropped += chunk.end - cut
                chunk.data = chunk.data[: cut - chunk.start]
        self._busy_until = min(self._busy_until, cut)
        return dropped

    # ---- queries ---------------------------------------------------------------------------

    def next_mark_at(self) -> float | None:
        """Call-clock time at which the oldest pending mark falls due, if any."""
        return self._marks[0].due / SAMPLE_RATE if self._marks else None

    @property
    def pending_marks(self) -> int:
        """Marks queued and not yet echoed."""
        return len(self._marks)

    def busy_until(self) -> float:
        """Call-clock time at which the queued audio finishes (in the past when idle)."""
        return self._busy_until / SAMPLE_RATE

    def is_playing(self, now: float) -> bool:
        """True while queued audio is still playing at `now`."""
        return self._busy_until > to_sample(now)

    def played_bytes(self, now: float) -> int:
        """Bytes of agent audio played by `now`."""
        current = to_sample(now)
        return sum(min(c.end, current) - c.start for c in self._chunks if c.start < current)

    def segments(self, now: float) -> list[tuple[float, float]]:
        """(start, end) call-clock seconds of each contiguous run of audio played by `now`."""
        runs = self._runs(to_sample(now))
        return [(start / SAMPLE_RATE, end / SAMPLE_RATE) for start, end in runs]

    def first_onset(self, after: float, now: float) -> float | None:
        """Start of the first run of audio beginning at or after `after` and begun by `now`."""
        chunks, current = self._chunks, to_sample(now)
        index = bisect_left(self._starts, to_sample(after))
        while index < len(chunks) and chunks[index].start <= current:
            if index == 0 or chunks[index - 1].end != chunks[index].start:
                return chunks[index].start / SAMPLE_RATE
            index += 1
        return None

    def _runs(self, current: int) -> list[tuple[int, int]]:
        runs: list[tuple[int, int]] = []
        for chunk in self._chunks:
            if chunk.start >= current:
                break
            end = min(chunk.end, current)
            if runs and runs[-1][1] == chunk.start:
                runs[-1] = (runs[-1][0], end)
            else:
                runs.append((chunk.start, end))
        return runs

    def heard(self, now: float) -> bytes:
        """μ-law from t=0 to `now`: agent audio where it played, silence (0xFF) elsewhere."""
        current = to_sample(now)
        timeline = bytearray([SILENCE_BYTE]) * current
        for chunk in self._chunks:
            if chunk.start >= current:
                break
            piece = chunk.data[: current - chunk.start]
            timeline[chunk.start : chunk.start + len(piece)] = piece
        return bytes(timeline)
