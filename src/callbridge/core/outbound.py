"""Agent audio waiting to go to Twilio, cut into chunks of whole 20 ms frames.

The model streams audio in deltas of any size; Twilio plays smoothest from whole 160-byte frames.
This queue holds audio per item in arrival order and hands out chunks that are multiples of 160
bytes; an item's last partial frame is padded with μ-law silence when the model says it is done,
or when it pauses (`pad`: GPT-Live never says).
No I/O. No clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

FRAME_BYTES = 160
SILENCE = b"\xff"


@dataclass(slots=True)
class _Segment:
    item_id: str
    content_index: int
    audio: bytearray = field(default_factory=bytearray)
    complete: bool = False


class OutboundAudio:
    """FIFO of agent audio by item; `take()` returns whole-frame chunks."""

    def __init__(self) -> None:
        self._segments: deque[_Segment] = deque()
        self._bytes = 0

    def push(self, item_id: str, content_index: int, audio: bytes) -> None:
        """Append model audio for `item_id`."""
        tail = self._segments[-1] if self._segments else None
        if tail is not None and tail.item_id != item_id and not tail.complete:
            self.finish(tail.item_id)  # a new item means the previous one has ended
        if tail is None or tail.item_id != item_id or tail.complete:
            tail = _Segment(item_id, content_index)
            self._segments.append(tail)
        tail.audio += audio
        self._bytes += len(audio)

    def finish(self, item_id: str) -> None:
        """The model finished `item_id`'s audio: pad its last partial frame with silence."""
        for segment in self._segments:
            if segment.item_id == item_id and not segment.complete:
                segment.complete = True
                remainder = len(segment.audio) % FRAME_BYTES
                if remainder:
                    pad = FRAME_BYTES - remainder
                    segment.audio += SILENCE * pad
                    self._bytes += pad

    def pad(self, item_id: str) -> None:
        """The model paused in `item_id` (an API whose model says no item is done): pad its
        last partial frame with silence now, so it plays with the rest and not after the pause;
        audio that follows starts a new frame."""
        for segment in self._segments:
            if segment.item_id == item_id and not segment.complete:
                remainder = len(segment.audio) % FRAME_BYTES
                if remainder:
                    pad = FRAME_BYTES - remainder
                    segment.audio += SILENCE * pad
                    self._bytes += pad

    def take(self, max_bytes: int) -> tuple[str, int, bytes] | None:
        """The next chunk of up to `max_bytes` (whole frames) as (item_id, content_index, audio)."""
        while self._segments:
            head = self._segments[0]
            available = len(head.audio)
            if not head.complete:
                available -= available % FRAME_BYTES
            size = min(available, max_bytes - max_bytes % FRAME_BYTES)
            if size > 0:
                chunk = bytes(head.audio[:size])
                del head.audio[:size]
                self._bytes -= size
                return head.item_id, head.content_index, chunk
            if head.complete and not head.audio:
                self._segments.popleft()
                continue
            return None
        return None

    def drop(self) -> set[str]:
        """Discard everything queued; returns the items that lost audio."""
        items = {segment.item_id for segment in self._segments if segment.audio}
        self._segments.clear()
        self._bytes = 0
        return items

    def drop_item(self, item_id: str) -> None:
        """Discard the queued audio of one item."""
        kept = [s for s in self._segments if s.item_id != item_id]
        self._segments = deque(kept)
        self._bytes = sum(len(s.audio) for s in kept)

    def only(self, item_id: str) -> bool:
        """True when everything queued (possibly nothing) belongs to `item_id`."""
        return all(s.item_id == item_id for s in self._segments)

    def holds(self, item_id: str) -> bool:
        """True while audio of `item_id` waits here."""
        return any(s.item_id == item_id and s.audio for s in self._segments)

    def __len__(self) -> int:
        return self._bytes
