"""What the caller has heard: agent audio sent to Twilio, and what Twilio confirmed played.

Every chunk of agent audio sent to Twilio is followed by a uniquely named mark. Twilio echoes a mark
once the audio queued before it has played — or at once when a `clear` discards it. So `clear()`
turns every pending mark stale, and a stale echo is never counted as played. This module alone
answers "how many ms of this item did the caller hear?" (the truncation point, never more than was
received) and estimates how much audio Twilio is holding, for pacing.
No I/O. No clock: times are passed in, in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Echo(Enum):
    PLAYED = "played"
    STALE = "stale"  # pending when we sent `clear`: discarded, not played
    UNKNOWN = "unknown"


@dataclass(slots=True)
class ItemAudio:
    """Audio accounting for one assistant item, in ms of that item's own audio."""

    content_index: int = 0
    received_ms: float = 0.0
    sent_ms: float = 0.0
    heard_ms: float = 0.0
    done: bool = False  # the model finished this item's audio


@dataclass(frozen=True, slots=True)
class _Chunk:
    item_id: str
    end_ms: float  # cumulative within the item
    duration_s: float
    sent_at: float
    audio: bytes = b""  # kept only for the as-heard recording


class PlaybackTracker:
    """Per-call playback ledger. Call `sent()` for every chunk, `echoed()` for every mark echo."""

    def __init__(self) -> None:
        self._items: dict[str, ItemAudio] = {}
        self._pending: dict[str, _Chunk] = {}  # in send order
        self._pending_by_item: dict[str, int] = {}  # item → chunks awaiting echo
        self._stale: set[str] = set()
        self._play_end = 0.0  # estimated time Twilio finishes what it holds
        self._last_echo_at = 0.0
        self.played: list[bytes] = []  # audio of chunks confirmed played (when kept), to drain
        self._pending_s = 0.0  # seconds of audio sent and not yet confirmed
        self._marks = 0

    def item(self, item_id: str) -> ItemAudio:
        """The ledger entry for `item_id`, created on first use."""
        entry = self._items.get(item_id)
        if entry is None:
            entry = self._items[item_id] = ItemAudio()
        return entry

    def received(self, item_id: str, content_index: int, ms: float) -> None:
        """The model delivered `ms` of audio for this item."""
        entry = self.item(item_id)
        entry.content_index = content_index
        entry.received_ms += ms

    def sent(self, item_id: str, ms: float, now: float, audio: bytes = b"") -> str:
        """A chunk of `ms` went to Twilio; returns the name of the mark that must follow it.
        `audio` is kept only to be handed back in `played` (the as-heard recording)."""
        entry = self.item(item_id)
        entry.sent_ms += ms
        self._marks += 1
        name = f"m{self._marks}"
        self._pending[name] = _Chunk(item_id, entry.sent_ms, ms / 1000.0, now, audio)
        self._pending_by_item[item_id] = self._pending_by_item.get(item_id, 0) + 1
        self._pending_s += ms / 1000.0
        self._play_end = max(self._play_end, now) + ms / 1000.0
        return name

    def echoed(self, name: str, now: float) -> Echo:
        """Twilio echoed mark `name`. Marks echo in order, so earlier pending ones played too."""
        if name in self._stale:
            self._stale.discard(name)
            return Echo.STALE
        if name not in self._pending:
            return Echo.UNKNOWN
        while self._pending:
            first, chunk = next(iter(self._pending.items()))
            del self._pending[first]
            self._forget_pending(chunk.item_id)
            self._pending_s -= chunk.duration_s
            entry = self._items[chunk.item_id]
            entry.heard_ms = max(entry.heard_ms, chunk.end_ms)
            if chunk.audio:
                self.played.append(chunk.audio)
            if first == name:
                break
        self._last_echo_at = now
        if not self._pending:
            self._pending_s = 0.0  # no float drift across a long call
        self._play_end = now + self._pending_s
        return Echo.PLAYED

    def clear(self, now: float) -> bytes:
        """We sent Twilio `clear`: everything pending is discarded, its marks go stale.
        Returns the part of the chunk that was playing which the caller heard (when kept)."""
        heard = b""
        if self._pending:
            head = next(iter(self._pending.values()))
            began = max(self._last_echo_at, head.sent_at)
            played = min(max(0.0, now - began), head.duration_s)
            heard = head.audio[: int(played * 8000)]
        self._stale.update(self._pending)
        self._pending.clear()
        self._pending_by_item.clear()
        self._pending_s = 0.0
        self._play_end = now
        return heard

    def queued_seconds(self, now: float) -> float:
        """Estimated seconds of audio Twilio still holds."""
        return max(0.0, self._play_end - now)

    @property
    def play_end(self) -> float:
        """Estimated time at which Twilio will have played everything sent."""
        return self._play_end

    def awaiting_echo(self) -> bool:
        """True while some sent audio is not yet confirmed played."""
        return bool(self._pending)

    def pending_items(self) -> set[str]:
        """Items with audio sent to Twilio but not yet confirmed played."""
        return set(self._pending_by_item)

    def is_pending(self, item_id: str) -> bool:
        """True while some of this item's audio awaits its echo."""
        return item_id in self._pending_by_item

    def others_pending(self, item_id: str) -> bool:
        """True while audio of any item but this one awaits its echo."""
        return len(self._pending_by_item) > (item_id in self._pending_by_item)

    def _forget_pending(self, item_id: str) -> None:
        left = self._pending_by_item[item_id] - 1
        if left:
            self._pending_by_item[item_id] = left
        else:
            del self._pending_by_item[item_id]

    def heard_ms(self, item_id: str) -> int:
        """Whole ms of the item confirmed played, clamped to what the model delivered."""
        entry = self._items.get(item_id)
        if entry is None:
            return 0
        return int(min(entry.heard_ms, entry.received_ms))
