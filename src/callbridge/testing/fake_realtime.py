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

from collections.abc import Sequence
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request

from callbridge.testing.fake_model_server import FakeModelServer, bearer_problem
from callbridge.testing.fake_realtime_config import FakeConfig, Recorder, Reply, ToolCall
from callbridge.testing.fake_realtime_connection import FakeConnection
from callbridge.testing.openai_validation import preload

__all__ = ["FakeConnection", "FakeRealtimeServer", "Reply", "ToolCall"]


class FakeRealtimeServer(FakeModelServer[FakeConnection]):
    """The fake server; `start()`/`stop()` it or use it as an async context manager.

    Recorded across all connections: `violations` (protocol errors by clients; tests assert it is
    empty), `truncate_errors`, `active_response_conflicts`, `interrupted_audio` (wire bytes of the
    deltas sent after a barge-in's `speech_started`), `handshake_attempts`. `latency_ms` is a
    model latency added to every response (greetings included), on top of a `Reply`'s own.
    `url` is `ws://127.0.0.1:PORT/v1/realtime`; append `?model=…` to connect.
    """

    path = "/v1/realtime"
    name = "fake_realtime"

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
        super().__init__(Recorder())
        self.connections: list[FakeConnection] = self._open

    # ---- what happened ----------------------------------------------------------------------

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

    async def send_error(
        self, code: str, message: str, type_: str = "invalid_request_error"
    ) -> None:
        """Send an `error` event on every open connection."""
        for connection in list(self.connections):
            await connection.send_error(code, message, type_)

    # ---- this server ------------------------------------------------------------------------

    _preload = staticmethod(preload)

    @staticmethod
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
        return bearer_problem(request)

    async def _handle(self, ws: ServerConnection) -> None:
        connection = FakeConnection(ws, self.config, self._recorder, len(self.connections) + 1)
        self.connections.append(connection)
        await connection.serve()

