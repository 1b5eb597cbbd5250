"""What a simulated caller's 20 ms frames carry, and how each echo is matched to its frame.

Owns the frame payloads, `Window` (one measurement window's figures: a 10 µs histogram of round
trips, lost, late, …) and `FrameLedger` (one call's ring of frames written and not yet echoed),
with the two ways agent audio coming back is matched to the frame that caused it:

- **by tag** (`--audio pcmu`): the first 8 bytes of each frame are magic, call number and
  sequence number, read back at every 160-byte offset of each agent payload. The bridge must
  pass μ-law through untouched.
- **by byte offset** (`--audio pcm16`): the bridge converts μ-law 8 kHz → PCM16 24 kHz → μ-law,
  which destroys tags but keeps length and order (libsoxr's output is aligned with its input,
  and after a flush its length is the input's × the rate ratio). So the k-th 160 bytes of agent
  audio a call receives is the echo of the k-th frame it sent: frame k is echoed once the call
  has received k × 160 bytes. The frames carry a steady tone instead of tags.

A frame still awaited a loss horizon after it was written is lost; an echo read after that, or
one that names no frame in flight, is unmatched. No I/O. No clock: times come in as arguments.
The ledger allocates nothing per frame.
"""

from __future__ import annotations

import base64
import math
import struct
from array import array
from dataclasses import dataclass, field
from typing import Any

from callbridge.audio.g711 import pcm16_to_ulaw

FRAME_BYTES = 160
FRAME_S = 0.020
RING = 128  # frames remembered per call (2.56 s), more than the loss horizon
MASK = RING - 1
TAG = struct.Struct(">HHI")
MAGIC = 0xA55A
BODY = bytes((0x55 + 17 * i) & 0x7F | 0x80 for i in range(FRAME_BYTES - TAG.size))
BIN_S = 1e-5  # latency histogram: 10 µs bins
NBINS = 200_000  # up to 2 s

EMPTY, PENDING_IN, PENDING_OUT, LOST = 0, 1, 2, 3


def tag_payload(call: int, seq: int) -> str:
    """The base64 payload of frame `seq` of call `call` when matching by tag."""
    return base64.b64encode(TAG.pack(MAGIC, call, seq & 0xFFFFFFFF) + BODY).decode()


# 400 Hz, not 440: exactly 8 periods in 20 ms, so the same frame over and over is a clean tone
TONE_FRAME = pcm16_to_ulaw([round(8000 * math.sin(2 * math.pi * 400 * i / 8000))
                            for i in range(FRAME_BYTES)])
TONE_PAYLOAD = base64.b64encode(TONE_FRAME).decode()


@dataclass
class Window:
    """The figures of one measurement window (frames sent while it was open)."""

    late_s: float
    hist: array[int] = field(default_factory=lambda: array("L", bytes(NBINS * 8)))
    sent: int = 0
    echoed: int = 0
    lost: int = 0
    late: int = 0
    max_s: float = 0.0
    dropped_calls: int = 0
    unmatched: int = 0
    duplicates: int = 0
    marks: int = 0
    lags: list[float] = field(default_factory=list)

    def record(self, rtt: float) -> None:
        index = int(rtt / BIN_S)
        self.hist[index if index < NBINS else NBINS - 1] += 1
        self.echoed += 1
        if rtt > self.max_s:
            self.max_s = rtt
        if rtt > self.late_s:
            self.late += 1

    def summary(self, calls: int) -> dict[str, Any]:
        lags = sorted(self.lags)

        def pick(q: float) -> float:
            return lags[min(len(lags) - 1, int(q * len(lags)))] * 1000 if lags else 0.0
        return {
            "sent": self.sent, "echoed": self.echoed, "lost": self.lost, "late": self.late,
            "max_ms": self.max_s * 1000, "dropped_calls": self.dropped_calls,
            "unmatched": self.unmatched, "duplicates": self.duplicates, "marks": self.marks,
            "calls": calls,
            "hist": {str(i): n for i, n in enumerate(self.hist) if n},
            "lag_ms": [pick(0.5), pick(0.99), lags[-1] * 1000 if lags else 0.0],
        }


class FrameLedger:
    """One call's frames in flight, numbered from 1.

    Each tick: `next_frame()` numbers the frame (and gives up on the one written a loss horizon
    ago), then `written()` once it is on the socket. Echoes come in through `echoed_tags()` (by
    tag) or `received()` (by offset); use one or the other for a call, never both.
    """

    __slots__ = ("loss_frames", "matched", "received_bytes", "sent_at", "seq", "state")

    def __init__(self, loss_frames: int) -> None:
        self.loss_frames = loss_frames
        self.seq = 0  # the last frame numbered
        self.sent_at = array("d", bytes(8 * RING))
        self.state = bytearray(RING)
        self.received_bytes = 0  # agent audio received, for matching by offset
        self.matched = 0  # frames accounted for by offset

    def next_frame(self, window: Window) -> int:
        """The next frame's number; the frame written a loss horizon ago, if awaited, is lost."""
        seq = self.seq = self.seq + 1
        state = self.state
        old = (seq - self.loss_frames) & MASK
        if state[old] == PENDING_IN:
            window.lost += 1
            state[old] = LOST
        elif state[old] == PENDING_OUT:
            state[old] = LOST
        return seq

    def written(self, seq: int, at: float, measuring: bool, window: Window) -> None:
        """Frame `seq` went out at `at`; it counts in `window` when `measuring`."""
        slot = seq & MASK
        self.sent_at[slot] = at
        if measuring:
            self.state[slot] = PENDING_IN
            window.sent += 1
        else:
            self.state[slot] = PENDING_OUT

    def echoed(self, seq: int, now: float, window: Window) -> None:
        """The echo of frame `seq` was read at `now`."""
        if not self.seq - RING < seq <= self.seq:
            window.unmatched += 1
            return
        slot = seq & MASK
        status = self.state[slot]
        if status == PENDING_IN:
            window.record(now - self.sent_at[slot])
        elif status == EMPTY:
            window.duplicates += 1
        elif status == LOST:
            window.unmatched += 1  # came back after the loss horizon: stays lost
        self.state[slot] = EMPTY

    def echoed_tags(self, audio: bytes, call: int, now: float, window: Window) -> None:
        """Agent audio matched by tag: each 160-byte offset holding our magic names a frame."""
        for offset in range(0, len(audio) - TAG.size + 1, FRAME_BYTES):
            magic, owner, seq = TAG.unpack_from(audio, offset)
            if magic != MAGIC:
                continue
            if owner != call:
                window.unmatched += 1
                continue
            self.echoed(seq, now, window)

    def received(self, size: int, now: float, window: Window) -> None:
        """`size` more bytes of agent audio were read at `now`, matched by offset: every frame
        whose 160 bytes have now all come back is echoed (a message may complete several, or
        none when it ends mid-frame)."""
        self.received_bytes += size
        whole = self.received_bytes // FRAME_BYTES
        for seq in range(self.matched + 1, whole + 1):
            self.echoed(seq, now, window)  # beyond the last frame written: unmatched
        if whole > self.matched:
            self.matched = whole

    def give_up_pending(self, window: Window) -> None:
        """The window is over or the call is gone: frames still awaited count as lost."""
        state = self.state
        for slot in range(RING):
            if state[slot] == PENDING_IN:
                window.lost += 1
                state[slot] = LOST
