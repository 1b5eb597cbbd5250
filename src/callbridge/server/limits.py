"""Limits on what one HTTP client can make this process hold: body size and header time.

Owns two guards in front of the app:

- `BodySizeLimit`, an ASGI middleware, answers 413 to a request whose body is larger than the
  configured bytes (`CALLBRIDGE_MAX_BODY_BYTES`): at once, unread, when `Content-Length` says so;
  otherwise as soon as the streamed body passes the limit, so no handler ever buffers more.
- `HeaderTimeoutProtocol`, uvicorn's httptools protocol with one more timer, closes a connection
  whose request line and headers have not all arrived within `HEADER_TIMEOUT_S`. uvicorn only
  times out idle keep-alive connections, so without it a client dribbling a request (slow loris)
  holds a socket for as long as it likes. WebSocket upgrades are HTTP requests: the same timer
  applies until their headers are complete.

WebSocket messages are bounded separately, by uvicorn's `ws_max_size` (see `runner`).
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_MAX_BODY_BYTES = 64 * 1024
HEADER_TIMEOUT_S = 10.0

_TOO_LARGE = b"request body too large\n"


class _BodyTooLarge(Exception):
    """The streamed body went past the limit (raised from `receive`, caught by the middleware)."""


class BodySizeLimit:
    """Refuse HTTP request bodies over `max_bytes` with 413; other scopes pass through."""

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _refuse(send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except _BodyTooLarge:
            if started:  # a handler that answered before reading its body: nothing to fix
                raise
            await _refuse(send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def _refuse(send: Send) -> None:
    """413, and `Connection: close` so uvicorn drops the unread rest of the body."""
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(_TOO_LARGE)).encode()),
        (b"connection", b"close"),
    ]})
    await send({"type": "http.response.body", "body": _TOO_LARGE})


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """httptools HTTP/1.1 that closes a connection whose request headers take too long."""

    header_timeout: float = HEADER_TIMEOUT_S
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_timer()  # the next request on a kept-alive connection

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:  # never restarted: the budget covers the whole head
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()
