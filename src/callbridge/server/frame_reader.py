"""The hot path's WebSocket frame reader: whole text frames cut from a byte stream by hand.

Owns `FrameReader` and `parser_idle`. On a call, both sockets carry little but short, whole,
unfragmented text frames (Twilio's `media` and `mark`, the model's events), and `websockets`'
general parser (a generator per frame, a `Frame` object, an event list) costs more than the
session's own logic for each of them. `FrameReader` takes only that common case: a frame
with FIN set, opcode text, no RSV bit, the mask bit the side expects (set from a client, clear
from a server) and a payload within the size limit. At the first frame that is anything else
(a ping, a pong, a close, a fragment, a binary frame, a protocol error) it stops and hands the
rest of the stream back, and the socket gives it to `websockets` as before. The socket takes the
stream back only when `parser_idle` says `websockets` is between frames with nothing buffered,
so the two parsers never share a frame.
"""

from __future__ import annotations

from websockets.protocol import Protocol

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

_FIN_TEXT = 0x81
_MASK_BIT = 0x80
_NOTHING = b""


class FrameReader:
    """Cuts whole text frames off the front of a stream (see the module docstring)."""

    __slots__ = ("_masked", "_max_size", "_tail")

    def __init__(self, *, masked: bool, max_size: int | None) -> None:
        self._tail = _NOTHING  # the start of a text frame whose end has not arrived
        self._masked = masked
        self._max_size = max_size if max_size is not None else 1 << 63

    def read(self, data: bytes) -> tuple[list[bytes], bytes]:
        """The payloads of the whole text frames at the front of what has arrived, and the
        bytes from the first frame that is not one (b"" when there is none: an unfinished text
        frame is kept for the next call). Once it returns rest, the reader is spent."""
        tail = self._tail
        buf = tail + data if tail else data
        end = len(buf)
        payloads: list[bytes] = []
        pos = 0
        want_mask = _MASK_BIT if self._masked else 0
        while end - pos >= 2:
            b1 = buf[pos + 1]
            if buf[pos] != _FIN_TEXT or b1 & _MASK_BIT != want_mask:
                return payloads, self._give_back(buf, pos)
            size = b1 & 0x7F
            head = pos + 2
            if size == 126:
                if end < head + 2:
                    break
                size = (buf[head] << 8) | buf[head + 1]
                head += 2
            elif size == 127:
                if end < head + 8:
                    break
                size = int.from_bytes(buf[head:head + 8], "big")
                head += 8
            if size > self._max_size:
                return payloads, self._give_back(buf, pos)
            if want_mask:
                stop = head + 4 + size
                if stop > end:
                    break
                payloads.append(apply_mask(memoryview(buf)[head + 4:stop], buf[head:head + 4]))
            else:
                stop = head + size
                if stop > end:
                    break
                payloads.append(buf[head:stop])
            pos = stop
        self._tail = buf[pos:] if pos < end else _NOTHING
        return payloads, _NOTHING

    def release(self, data: bytes) -> bytes:
        """Stop reading: the held-back start of a frame, then `data`, for `websockets`."""
        tail, self._tail = self._tail, _NOTHING
        return tail + data if tail else data

    def _give_back(self, buf: bytes, pos: int) -> bytes:
        self._tail = _NOTHING
        return buf[pos:] if pos else buf


def parser_idle(protocol: Protocol) -> bool:
    """Whether `websockets` is waiting for the first byte of a frame, with nothing buffered
    and no fragmented message open — the only moment the stream can change hands. Answers
    False when it cannot tell (another `websockets` release), so the socket keeps using it."""
    if protocol.reader.buffer or protocol.current_size is not None:
        return False
    waiting: object = protocol.parser
    inner = getattr(waiting, "gi_yieldfrom", None)
    while inner is not None:  # parse() → [ClientProtocol/ServerProtocol.parse →] at_eof()
        waiting, inner = inner, getattr(inner, "gi_yieldfrom", None)
    code = getattr(waiting, "gi_code", None)
    return code is not None and code.co_name == "at_eof"
