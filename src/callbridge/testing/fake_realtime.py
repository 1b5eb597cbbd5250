"""A fake OpenAI Realtime (GA) server on a real loopback WebSocket, for tests and offline agents.

Owns the server: the opening handshake (path `/v1/realtime?model=…`, `Authorization: Bearer …`,
the `OpenAI-Beta` refusal), one `FakeConnection` per accepted socket, and the test controls
(refusing handshakes, dropping connections mid-call, injecting errors, waiting for events). It is
an independent implementation of the wire protocol: it imports nothing from `callbridge.core` or
`callbridge.server`, so it can judge them. Script the model with `Reply` / `ToolCall`; every
connection plays the script from the start.

    async with FakeRealtimeServer(replies=[Reply("Hello!")]) as server:
        ...connect a client to server.url...
        assert server.violations == [] and server.truncate_errors == 0

Per-session behaviour lives in `fake_realtime_connection`, responses in `fake_realtime_response`,
audio and VAD in `fake_realtime_audio`, wire shapes in `fake_realtime_wire`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from callbridge.testing.fake_realtime_config import FakeConfig, Recorder, Reply, ToolCall
from callbridge.testing.fake_realtime_connection import FakeConnection
from callbridge.testing.openai_validation import preload
from callbridge.testing.served import Served

__all__ = ["FakeConnection", "FakeRealtimeServer", "Reply", "ToolCall"]

_MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # the API accepts appends up to 15 MiB


class FakeRealtimeServer(Served):
    """The fake server; `start()`/`stop()` it or use it as an async context manager.

    Recorded across all connections: `violations` (protocol errors by clients; tests assert it is
    empty), `truncate_errors`, `active_response_conflicts`, `interrupted_audio` (wire bytes of the
    deltas sent after a barge-in's `speech_started`), `handshake_attempts`. `latency_ms` is a
    model latency added to every response (greetings included), on top of a `Reply`'s own.
    """

    def __init__(
        self,
        replies: Sequence[Reply] = (),
        *,
        echo: bool = False,
        delta_ms: float = 100,
        speed: float = 8.0,
        late_deltas_after_interrupt: int = 2,
        vad_threshold_dbfs: float = -40.0,
        vad_start_ms: float = 60,
        silence_duration_ms: float = 500,
        user_transcripts: Sequence[str] | None = None,
        session_max_seconds: float | None = None,
        strict: bool = False,
        latency_ms: float = 0.0,
    ) -> None:
        if delta_ms <= 0 or speed <= 0:
            raise ValueError("delta_ms and speed must be positive")
        self.config = FakeConfig(
            replies=tuple(replies),
            echo=echo,
            delta_ms=delta_ms,
            speed=speed,
            late_deltas_after_interrupt=late_deltas_after_interrupt,
            vad_threshold_dbfs=vad_threshold_dbfs,
            vad_start_ms=vad_start_ms,
            silence_duration_ms=silence_duration_ms,
            user_transcripts=tuple(user_transcripts) if user_transcripts is not None else None,
            session_max_seconds=session_max_seconds,
            strict=strict,
            latency_ms=latency_ms,
        )
        self.connections: list[FakeConnection] = []
        self.handshake_attempts = 0
        self._recorder = Recorder()
        self._server: Server | None = None
        self._url: str | None = None
        self._reject_remaining = 0
        self._reject_status = 503

    # ---- life cycle -------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on `host:port` (0: any free port); `url` is valid afterwards."""
        if self._server is not None:
            raise RuntimeError("the fake server is already started")
        await asyncio.to_thread(preload)  # keep the first validation off the event loop
        self._server = await serve(
            self._handle,
            host,
            port,
            process_request=self._check_handshake,
            max_size=_MAX_MESSAGE_BYTES,
            compression=None,
        )
        bound = next(iter(self._server.sockets)).getsockname()
        self._url = f"ws://{bound[0]}:{bound[1]}/v1/realtime"

    async def stop(self) -> None:
        """Close every connection (1001) and stop listening. Safe to call twice."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def url(self) -> str:
        """`ws://127.0.0.1:PORT/v1/realtime`; append `?model=…` to connect."""
        if self._url is None:
            raise RuntimeError("the fake server is not started")
        return self._url

    # ---- what happened ----------------------------------------------------------------------

    @property
    def violations(self) -> list[str]:
        """Every protocol violation by any client, in order, as "connection N: what"."""
        return self._recorder.violations

    @property
    def truncate_errors(self) -> int:
        return self._recorder.truncate_errors

    @property
    def active_response_conflicts(self) -> int:
        return self._recorder.active_response_conflicts

    @property
    def interrupted_audio(self) -> list[bytes]:
        return self._recorder.interrupted_audio

    # ---- controls ---------------------------------------------------------------------------

    def reject_next(self, n: int, status: int = 503) -> None:
        """Refuse the next `n` opening handshakes with HTTP `status`."""
        self._reject_remaining, self._reject_status = n, status

    def drop_when(self, event_type: str, nth: int = 1) -> None:
        """Abort the TCP connection (no close frame) just before the server would send the nth
        event of `event_type` from now on, counted across connections. One-shot."""
        self._recorder.arm_drop(event_type, nth)

    async def drop_all(self) -> None:
        """Abort every open connection now, without a close frame (clients see 1006)."""
        for connection in self.connections:
            connection.abort()
        await asyncio.sleep(0)

    async def send_error(
        self, code: str, message: str, type_: str = "invalid_request_error"
    ) -> None:
        """Send an `error` event on every open connection."""
        for connection in list(self.connections):
            await connection.send_error(code, message, type_)

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the published test API
    ) -> None:
        """Wait until `predicate()` is true; raise `TimeoutError` after `timeout` seconds."""
        async with asyncio.timeout(timeout):
            while not predicate():  # noqa: ASYNC110 - an arbitrary predicate can only be polled
                await asyncio.sleep(0.005)

    async def wait_for_event(
        self,
        client_event_type: str,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the published test API
    ) -> dict[str, Any]:
        """Wait until clients sent `count` events of a type (all connections); return the last."""

        def matching() -> list[dict[str, Any]]:
            return [
                event
                for connection in self.connections
                for event in connection.client_events
                if event.get("type") == client_event_type
            ]

        await self.wait_for(lambda: len(matching()) >= count, timeout)
        return matching()[count - 1]

    # ---- websockets callbacks ---------------------------------------------------------------

    def _check_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        self.handshake_attempts += 1
        if self._reject_remaining > 0:
            self._reject_remaining -= 1
            status = HTTPStatus(self._reject_status)
            return connection.respond(status, f"{status.phrase} (fake_realtime.reject_next)\n")
        refusal = _handshake_problem(request)
        if refusal is None:
            return None
        status, message = refusal
        self._recorder.violation("handshake", message)
        return connection.respond(status, message + "\n")

    async def _handle(self, ws: ServerConnection) -> None:
        connection = FakeConnection(ws, self.config, self._recorder, len(self.connections) + 1)
        self.connections.append(connection)
        await connection.serve()


def _handshake_problem(request: Request) -> tuple[HTTPStatus, str] | None:
    url = urlsplit(request.path)
    if url.path != "/v1/realtime":
        return HTTPStatus.NOT_FOUND, f"unknown path {url.path!r}; expected '/v1/realtime'"
    query = parse_qs(url.query, keep_blank_values=True)
    if list(query) != ["model"] or len(query["model"]) != 1 or not query["model"][0]:
        return (
            HTTPStatus.BAD_REQUEST,
            f"expected exactly one query parameter 'model', got {url.query!r}",
        )
    authorization = request.headers.get("Authorization", "")
    if not authorization.startswith("Bearer ") or not authorization[7:].strip():
        return HTTPStatus.UNAUTHORIZED, "missing or malformed 'Authorization: Bearer <key>' header"
    return None
