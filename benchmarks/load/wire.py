"""Lean WebSocket endpoints for the load harness: RFC 6455 by hand on asyncio Protocols.

The harness must stay far cheaper than the server it measures, so its sockets skip every layer it
can: no task, queue or assembler per connection, no generator-based parser. `WsConnection` is an
`asyncio.Protocol` that does the HTTP upgrade itself (the accept key from `websockets.utils`),
then parses frames straight out of its receive buffer and hands each text message to a callback,
synchronously, in `data_received`. Sending is synchronous too: a frame header is packed, the
payload masked with `websockets`' C `apply_mask` (client side; one random key per connection),
and one `transport.write` carries it — `send_many` puts several messages in one write. Pings are
answered, close frames returned. Extensions (compression) are never negotiated. Nothing logs.

Used by the callers (client side), the echo upstream and the relay (server side).
"""

from __future__ import annotations

import asyncio
import os
import ssl
import struct
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from websockets.utils import accept_key, generate_key

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the wheel ships it
    from websockets.utils import apply_mask

MAX_MESSAGE = 4 * 1024 * 1024
_SHORT = struct.Struct(">BB")
_MEDIUM = struct.Struct(">BBH")
_LONG = struct.Struct(">BBQ")
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10

OnText = Callable[["WsConnection", bytes], None]
OnClose = Callable[["WsConnection"], None]


@dataclass(frozen=True)
class Request:
    """An upgrade (or plain HTTP) request a server received."""

    path: str
    headers: dict[str, str]  # lower-case names


# A server's request handler: None accepts the upgrade; (status, body) answers plain HTTP.
OnRequest = Callable[[Request], tuple[int, str] | None]


class HandshakeError(Exception):
    """The peer did not complete a WebSocket upgrade."""


def _frame(opcode: int, payload: bytes, mask: bytes | None) -> bytes:
    n = len(payload)
    bit = 0x80 if mask is not None else 0
    if n < 126:
        head = _SHORT.pack(0x80 | opcode, bit | n)
    elif n < 65536:
        head = _MEDIUM.pack(0x80 | opcode, bit | 126, n)
    else:
        head = _LONG.pack(0x80 | opcode, bit | 127, n)
    if mask is None:
        return head + payload
    return head + mask + apply_mask(payload, mask)


class WsConnection(asyncio.Protocol):
    """One WebSocket connection, client or server side; see the module docstring.

    `on_text(conn, data)` gets each text message as UTF-8 bytes; `on_close(conn)` runs once when
    the connection is gone. `opened` resolves when the handshake is done (or fails).
    """

    def __init__(self, on_text: OnText, on_close: OnClose | None = None, *,
                 client_request: bytes | None = None, expected_accept: str = "",
                 on_request: OnRequest | None = None,
                 on_open: Callable[[WsConnection], None] | None = None) -> None:
        self.on_text = on_text
        self.on_close = on_close
        self.on_request = on_request
        self.on_open = on_open
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.open = False
        self.closed = False
        self.context: object = None  # whatever the owner wants to hang on the connection
        self._client_request = client_request
        self._expected_accept = expected_accept
        self._mask = os.urandom(4) if client_request is not None else None
        self._buffer = bytearray()
        self._fragments: list[bytes] = []
        self._close_sent = False

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        if self._client_request is not None:
            self.transport.write(self._client_request)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        if self.open:
            buffer = self._buffer
            if buffer:
                buffer += data
                self._parse(buffer)
            else:
                self._parse(bytearray(data))
            return
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > 65536:
                self._fail(HandshakeError("HTTP head too long"))
            return
        head = bytes(self._buffer[:end]).decode("latin-1")
        rest = bytearray(self._buffer[end + 4:])
        self._buffer = bytearray()
        if self._client_request is not None:
            self._client_handshake(head)
        else:
            self._server_handshake(head)
        if self.open and rest:
            self._parse(rest)

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(exc or ConnectionError("connection closed"))

    # ------------------------------------------------------------------ sending

    def send_text(self, text: str | bytes) -> bool:
        """Write one text message now. False when the connection is not open."""
        if not self.open or self._close_sent:
            return False
        data = text.encode() if isinstance(text, str) else text
        self.transport.write(_frame(OP_TEXT, data, self._mask))  # type: ignore[union-attr]
        return True

    def send_many(self, texts: list[bytes]) -> bool:
        """Write several text messages in one write."""
        if not self.open or self._close_sent:
            return False
        mask = self._mask
        self.transport.write(b"".join([_frame(OP_TEXT, t, mask) for t in texts]))  # type: ignore[union-attr]
        return True

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame (the peer answers and closes the TCP connection)."""
        if self.closed:
            return
        if self.open and not self._close_sent:
            self._close_sent = True
            payload = struct.pack(">H", code) + reason.encode()[:120]
            self.transport.write(_frame(OP_CLOSE, payload, self._mask))  # type: ignore[union-attr]
            if self._mask is None:  # a server closes the TCP connection after its close frame
                self.transport.close()  # type: ignore[union-attr]
        elif not self.open and self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        self._finish(ConnectionError("aborted"))

    # ------------------------------------------------------------------ handshakes

    def _client_handshake(self, head: str) -> None:
        status_line, _, header_text = head.partition("\r\n")
        headers = _headers(header_text)
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or parts[1] != "101":
            self._fail(HandshakeError(f"upgrade answered {status_line!r}"))
            return
        if headers.get("sec-websocket-accept") != self._expected_accept:
            self._fail(HandshakeError("bad Sec-WebSocket-Accept"))
            return
        self._opened()

    def _server_handshake(self, head: str) -> None:
        request_line, _, header_text = head.partition("\r\n")
        headers = _headers(header_text)
        parts = request_line.split(" ")
        path = parts[1] if len(parts) >= 2 else "/"
        answer = self.on_request(Request(path, headers)) if self.on_request else None
        key = headers.get("sec-websocket-key")
        if answer is None and (key is None or headers.get("upgrade", "").lower() != "websocket"):
            answer = (426, "a WebSocket upgrade is required\n")
        transport = self.transport
        assert transport is not None
        if answer is not None:
            status, body = answer
            data = body.encode()
            transport.write(f"HTTP/1.1 {status} {'OK' if status < 400 else 'Refused'}\r\n"
                            f"Content-Type: text/plain\r\nContent-Length: {len(data)}\r\n"
                            "Connection: close\r\n\r\n".encode() + data)
            transport.close()
            return
        assert key is not None
        transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                        + accept_key(key).encode() + b"\r\n\r\n")
        self._opened()

    def _opened(self) -> None:
        self.open = True
        if not self.opened.done():
            self.opened.set_result(None)
        if self.on_open is not None:
            self.on_open(self)

    def _fail(self, error: Exception) -> None:
        if not self.opened.done():
            self.opened.set_exception(error)
        if self.transport is not None:
            self.transport.close()

    # ------------------------------------------------------------------ frames in

    def _parse(self, buffer: bytearray) -> None:
        """Take every complete frame off the front of `buffer`; keep the rest."""
        pos, size = 0, len(buffer)
        while size - pos >= 2:
            b0, b1 = buffer[pos], buffer[pos + 1]
            n = b1 & 0x7F
            at = pos + 2
            if n == 126:
                if size - at < 2:
                    break
                n = (buffer[at] << 8) | buffer[at + 1]
                at += 2
            elif n == 127:
                if size - at < 8:
                    break
                n = int.from_bytes(buffer[at:at + 8], "big")
                at += 8
            mask = None
            if b1 & 0x80:
                if size - at < 4:
                    break
                mask = bytes(buffer[at:at + 4])
                at += 4
            if size - at < n:
                if n > MAX_MESSAGE:
                    self.abort()
                    return
                break
            payload = bytes(buffer[at:at + n])
            if mask is not None:
                payload = apply_mask(payload, mask)
            pos = at + n
            opcode = b0 & 0x0F
            if opcode == OP_TEXT:
                if b0 & 0x80:
                    self.on_text(self, payload)
                else:
                    self._fragments = [payload]
            elif opcode == OP_CONT and self._fragments:
                self._fragments.append(payload)
                if b0 & 0x80:
                    data, self._fragments = b"".join(self._fragments), []
                    self.on_text(self, data)
            elif opcode == OP_PING and self.transport is not None:
                self.transport.write(_frame(OP_PONG, payload, self._mask))
            elif opcode == OP_CLOSE:
                self._on_close_frame(payload)
                return
            if self.closed:
                return
        self._buffer = buffer[pos:] if pos < size else bytearray()

    def _on_close_frame(self, payload: bytes) -> None:
        transport = self.transport
        if transport is None:
            return
        if not self._close_sent:
            self._close_sent = True
            transport.write(_frame(OP_CLOSE, payload[:2], self._mask))
        transport.close()

    def _finish(self, exc: BaseException) -> None:
        if self.closed:
            return
        self.closed = True
        self.open = False
        if not self.opened.done():
            self.opened.set_exception(exc)
        if not self.opened.cancelled():
            self.opened.exception()  # retrieved: a failed open nobody awaited is not an error
        if self.on_close is not None:
            self.on_close(self)


def _headers(text: str) -> dict[str, str]:
    headers = {}
    for line in text.split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


async def connect(url: str, on_text: OnText, on_close: OnClose | None = None, *,
                  headers: dict[str, str] | None = None, within: float = 10.0) -> WsConnection:
    """Open a client WebSocket to `url` (ws:// or wss://); returns once the handshake is done.

    Raises OSError, TimeoutError or HandshakeError.
    """
    parts = urlsplit(url)
    secure = parts.scheme in ("wss", "https")
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if secure else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    key = generate_key()
    lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13",
             "User-Agent: callbridge-load"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    conn = WsConnection(on_text, on_close, client_request=request,
                        expected_accept=accept_key(key))
    loop = asyncio.get_running_loop()
    tls = ssl.create_default_context() if secure else None
    try:
        async with asyncio.timeout(within):
            await loop.create_connection(lambda: conn, host, port, ssl=tls,
                                         server_hostname=host if tls else None)
            await asyncio.shield(conn.opened)
    except BaseException:
        conn.abort()
        raise
    return conn


async def serve(host: str, port: int, on_text: OnText, on_open: Callable[[WsConnection], None],
                on_close: OnClose | None = None, on_request: OnRequest | None = None,
                ) -> asyncio.Server:
    """A WebSocket server: `on_open(conn)` after each accepted handshake, then `on_text`."""
    loop = asyncio.get_running_loop()

    def factory() -> WsConnection:
        return WsConnection(on_text, on_close, on_request=on_request, on_open=on_open)

    return await loop.create_server(factory, host, port, backlog=4096)


def install_uvloop() -> str:
    """Use uvloop when installed (the server does, through uvicorn); returns the loop's name."""
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"
