"""The Twilio media socket's synchronous lane: frames in and out without ASGI in between.

Owns `MediaSocketProtocol`, uvicorn's sans-I/O WebSocket protocol with one addition. Every
WebSocket scope it serves carries a `MediaLane` under `scope["extensions"][LANE]`. Until a
handler attaches to the lane, the socket behaves exactly as uvicorn's: the upgrade, `accept`,
the first messages (`connected`, `start`) and the close all go through ASGI and Starlette. Once
the bridge attaches, each message is handed to it as bytes from `data_received`, on the same
stack (no queue, no task switch, no UTF-8 decode: the core's parser validates), and the bridge's
frames are written to the transport at once, framed here. A frame in becomes a frame out in one
synchronous call; the disconnect still reaches the app through ASGI's `receive`. While the lane
is attached and the socket open, whole text frames are cut from the stream by `FrameReader`
instead of `websockets`; pings, pongs, the close and anything unusual still go to `websockets`.

It also ends a socket that has gone silent: Twilio sends audio every 20 ms and uvicorn pings
every few seconds, so a connection that delivers no bytes at all for `SILENT_AFTER_S` is
half-open (the peer vanished without FIN or RST) and is aborted; the bridge then ends the call
and its billed Realtime session as for any lost media socket. Silence, not a missing pong, is
the test, so a peer that never answers pings is not cut off while its audio flows.

A server without this protocol (another ASGI server, a test client) simply has no lane, and the
bridge falls back to Starlette's socket.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable
from typing import Any

from starlette.websockets import WebSocket
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

from callbridge.server.frame_reader import FrameReader, parser_idle

LANE = "callbridge.media_lane"
SILENT_AFTER_S = 6.0
_SILENCE_CHECK_S = 2.0

_log = logging.getLogger("callbridge.media_socket")
_SHORT = struct.Struct("!BB")
_MEDIUM = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")
_FIN_TEXT = 0x81


def text_frame(payload: bytes) -> bytes:
    """One unmasked, unfragmented server-to-client text frame (RFC 6455 §5.2)."""
    size = len(payload)
    if size < 126:
        return _SHORT.pack(_FIN_TEXT, size) + payload
    if size < 65536:
        return _MEDIUM.pack(_FIN_TEXT, 126, size) + payload
    return _LONG.pack(_FIN_TEXT, 127, size) + payload


class MediaLane:
    """The bridge's handle on one media socket's protocol."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: MediaSocketProtocol) -> None:
        self._protocol = protocol

    def attach(self, on_message: Callable[[bytes], object]) -> None:
        """From now on every message goes to `on_message`, starting with any already queued."""
        protocol = self._protocol
        queue = protocol.queue
        held = []
        while not queue.empty():
            held.append(queue.get_nowait())
        protocol.on_message = on_message
        for message in held:
            if message["type"] != "websocket.receive":
                queue.put_nowait(message)  # a disconnect stays for ASGI's receive
                continue
            text = message.get("text")
            protocol.deliver(text.encode() if text is not None else message.get("bytes") or b"")
        if protocol.read_paused:
            protocol.read_paused = False
            protocol.transport.resume_reading()

    def send_text(self, text: str) -> None:
        """Write one text message now; dropped once the socket is closing."""
        protocol = self._protocol
        if protocol.close_sent or protocol.disconnected:
            return
        protocol.transport.write(text_frame(text.encode()))

    def send_texts(self, texts: list[str]) -> None:
        """Write text messages now, in order, in one write (one system call)."""
        protocol = self._protocol
        if protocol.close_sent or protocol.disconnected:
            return
        if len(texts) == 1:
            protocol.transport.write(text_frame(texts[0].encode()))
        else:
            protocol.transport.write(b"".join([text_frame(text.encode()) for text in texts]))


class MediaSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, plus the lane (see the module docstring)."""

    on_message: Callable[[bytes], object] | None = None
    _received = 0
    _received_at_check = -1
    _quiet_checks = 0
    _watchdog: asyncio.TimerHandle | None = None
    _reader: FrameReader | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._watchdog = self.loop.call_later(_SILENCE_CHECK_S, self._check_silence)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._received += 1
        reader = self._reader
        if reader is not None:
            if self.close_sent or self.on_message is None or self.conn.state is not State.OPEN:
                self._reader = None
                data = reader.release(data)
            else:
                payloads, rest = reader.read(data)
                for payload in payloads:
                    if not self.close_sent:
                        self.deliver(payload)
                if not rest:
                    return
                self._reader = None
                data = rest
        super().data_received(data)
        if (self.on_message is not None and not self.close_sent
                and self.conn.state is State.OPEN and parser_idle(self.conn)):
            self._reader = FrameReader(masked=True, max_size=self.conn.max_message_size)

    def _check_silence(self) -> None:
        self._watchdog = None
        if self._received != self._received_at_check:
            self._received_at_check = self._received
            self._quiet_checks = 0
        else:
            self._quiet_checks += 1
        if self._quiet_checks * _SILENCE_CHECK_S < SILENT_AFTER_S:
            self._watchdog = self.loop.call_later(_SILENCE_CHECK_S, self._check_silence)
            return
        _log.warning("media socket silent for %.0f s (half-open?); aborting it", SILENT_AFTER_S)
        self.close_sent = True
        self.transport.abort()  # close() would wait to flush to a peer that is gone

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope: dict[str, Any] | None = getattr(self, "scope", None)
        if scope is not None:  # absent when the handshake itself was refused
            scope["extensions"][LANE] = MediaLane(self)

    def send_receive_event_to_app(self) -> None:
        on_message = self.on_message
        if on_message is None or self.close_sent:
            super().send_receive_event_to_app()
            return
        frames = self.frames
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        self.frames = []
        self.deliver(data)

    def deliver(self, data: bytes) -> None:
        """Hand one message to the attached handler; a handler that raises ends the socket."""
        on_message = self.on_message
        if on_message is None:
            return
        try:
            on_message(data)
        except Exception:
            # The old path would have ended the read loop; end the socket the same way.
            _log.exception("media socket handler failed; closing the socket")
            self.on_message = None
            self.transport.close()


def lane_of(ws: WebSocket) -> MediaLane | None:
    """The synchronous lane of a socket served by `MediaSocketProtocol`, else None."""
    lane = ws.scope.get("extensions", {}).get(LANE)
    return lane if isinstance(lane, MediaLane) else None
