"""A fake OpenAI GPT-Live server on a real loopback WebSocket, for tests and offline agents.

Owns the server: the opening handshake (path `/v1/live/sessions` with no query string, a Live
model in the URL refused as `invalid_model`, `Authorization: Bearer …` required), one `LiveSession`
per accepted socket, the script every session plays from its start, and the test controls
(refusing handshakes, dropping, stalling, injecting errors, waiting for events). It is an
independent implementation of the wire protocol: it imports nothing from `callbridge.core` or
`callbridge.server`, so it can judge them.

    async with FakeLiveServer(replies=[LiveReply("Hello!")]) as server:
        ...connect a client to server.url, send session.start, stream μ-law...
        assert server.violations == []
        assert [u.transcript for u in server.spoken] == [...]

Per-session behaviour lives in `fake_live_session`, the voice in `fake_live_speech`, the caller's
input in `fake_live_audio`, delegation rules in `fake_live_delegation`, backend responses in
`fake_live_backend`, shapes in `fake_live_wire`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from callbridge.testing.fake_live_config import (
    FakeLiveConfig,
    LiveRecorder,
    LiveReply,
    LiveToolCall,
)
from callbridge.testing.fake_live_delegation import Delegation
from callbridge.testing.fake_live_session import LiveSession
from callbridge.testing.fake_live_speech import Utterance
from callbridge.testing.live_validation import preload_live
from callbridge.testing.served import Served

__all__ = ["Delegation", "FakeLiveServer", "LiveReply", "LiveSession", "LiveToolCall", "Utterance"]

_PATH = "/v1/live/sessions"
_MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class FakeLiveServer(Served):
    """The fake server; `start()`/`stop()` it or use it as an async context manager.

    Script: `replies` (one per caller turn, in order, the last repeating) or `echo`; `greeting`
    replaces what the model says for its first commentary. Pacing: `speed` (1.0 = real time),
    `delta_ms` per audio delta, `reaction_ms` before the model speaks. Caller input:
    `vad_threshold_dbfs`, `vad_start_ms`, `silence_duration_ms` (end of a caller turn),
    `barge_in_ms` (caller speech that stops the model), `backchannel_after_ms` (the model says
    "Mhm." once in a caller turn that long; None: never), `input_lead_ms` (how far output may run
    ahead of the input clock), `gap_tolerance_ms`, `user_transcripts`. Session: `usage_interval_s`,
    `expires_in_s` (both `expires_at` and the server-side expiry), `close_drain_ms`. `strict`
    validates the fake's own events.

    Recorded across all sessions: `sessions`, `violations` (tests assert it is empty),
    `handshake_attempts`, and the merged `spoken`, `delegations`, `client_events`.
    """

    def __init__(
        self,
        replies: Sequence[LiveReply] = (),
        *,
        echo: bool = False,
        greeting: str | None = None,
        speed: float = 1.0,
        delta_ms: float = 100.0,
        reaction_ms: float = 300.0,
        vad_threshold_dbfs: float = -40.0,
        vad_start_ms: float = 60.0,
        silence_duration_ms: float = 500.0,
        barge_in_ms: float = 300.0,
        backchannel_after_ms: float | None = None,
        input_lead_ms: float = 500.0,
        gap_tolerance_ms: float = 60.0,
        user_transcripts: Sequence[str] | None = None,
        usage_interval_s: float = 60.0,
        expires_in_s: float = 7200.0,
        close_drain_ms: float = 2000.0,
        strict: bool = False,
    ) -> None:
        if delta_ms <= 0 or speed <= 0 or usage_interval_s <= 0 or expires_in_s <= 0:
            raise ValueError("delta_ms, speed, usage_interval_s and expires_in_s must be positive")
        self.config = FakeLiveConfig(
            replies=tuple(replies),
            echo=echo,
            greeting=greeting,
            speed=speed,
            delta_ms=delta_ms,
            reaction_ms=reaction_ms,
            vad_threshold_dbfs=vad_threshold_dbfs,
            vad_start_ms=vad_start_ms,
            silence_duration_ms=silence_duration_ms,
            barge_in_ms=barge_in_ms,
            backchannel_after_ms=backchannel_after_ms,
            input_lead_ms=input_lead_ms,
            gap_tolerance_ms=gap_tolerance_ms,
            user_transcripts=tuple(user_transcripts) if user_transcripts is not None else None,
            usage_interval_s=usage_interval_s,
            expires_in_s=expires_in_s,
            close_drain_ms=close_drain_ms,
            strict=strict,
        )
        self.sessions: list[LiveSession] = []
        self.handshake_attempts = 0
        self._recorder = LiveRecorder()
        self._server: Server | None = None
        self._url: str | None = None
        self._reject_remaining = 0
        self._reject_status = 503

    # ---- life cycle -------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on `host:port` (0: any free port); `url` is valid afterwards."""
        if self._server is not None:
            raise RuntimeError("the fake server is already started")
        await asyncio.to_thread(preload_live)  # keep the first validation off the event loop
        self._server = await serve(
            self._handle,
            host,
            port,
            process_request=self._check_handshake,
            max_size=_MAX_MESSAGE_BYTES,
            compression=None,
        )
        bound = next(iter(self._server.sockets)).getsockname()
        self._url = f"ws://{bound[0]}:{bound[1]}{_PATH}"

    async def stop(self) -> None:
        """Close every connection (1001) and stop listening. Safe to call twice."""
        self._recorder.sending.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def url(self) -> str:
        """`ws://127.0.0.1:PORT/v1/live/sessions`, to connect to as it is."""
        if self._url is None:
            raise RuntimeError("the fake server is not started")
        return self._url

    # ---- what happened ----------------------------------------------------------------------

    @property
    def violations(self) -> list[str]:
        """Every protocol violation by any client, in order, as "session N: what"."""
        return self._recorder.violations

    @property
    def spoken(self) -> list[Utterance]:
        """Everything the model said or began to say, all sessions, in session order."""
        return [utterance for session in self.sessions for utterance in session.spoken]

    @property
    def delegations(self) -> list[Delegation]:
        return [delegation for session in self.sessions for delegation in session.delegations]

    @property
    def unanswered_delegations(self) -> list[Delegation]:
        """Delegations the client left hanging (no commentary, or calls never continued)."""
        return [delegation for delegation in self.delegations if not delegation.answered]

    @property
    def client_events(self) -> list[dict[str, Any]]:
        return [event for session in self.sessions for event in session.client_events]

    # ---- controls ---------------------------------------------------------------------------

    def reject_next(self, n: int, status: int = 503) -> None:
        """Refuse the next `n` opening handshakes with HTTP `status`."""
        self._reject_remaining, self._reject_status = n, status

    def drop_when(self, event_type: str, nth: int = 1) -> None:
        """Abort the TCP connection (no close frame) just before the server would send the nth
        event of `event_type` from now on, counted across sessions. One-shot."""
        self._recorder.arm_drop(event_type, nth)

    async def drop_all(self) -> None:
        """Abort every open connection now, without a close frame (clients see 1006)."""
        for session in self.sessions:
            session.abort()
        await asyncio.sleep(0)

    def stall(self) -> None:
        """Stop sending anything on every session (sockets stay open) until `resume()`."""
        self._recorder.sending.clear()

    def resume(self) -> None:
        self._recorder.sending.set()

    async def send_error(
        self,
        code: str,
        message: str,
        type_: str = "invalid_request_error",
        *,
        fatal: bool = False,
    ) -> None:
        """Send an `error` event on every open session; `fatal` then closes the socket (1011)."""
        for session in list(self.sessions):
            await session.send_error(code, message, type_, fatal=fatal)

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
        """Wait until clients sent `count` events of a type (all sessions); return the last."""

        def matching() -> list[dict[str, Any]]:
            return [e for e in self.client_events if e.get("type") == client_event_type]

        await self.wait_for(lambda: len(matching()) >= count, timeout)
        return matching()[count - 1]

    # ---- websockets callbacks ---------------------------------------------------------------

    def _check_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        self.handshake_attempts += 1
        if self._reject_remaining > 0:
            self._reject_remaining -= 1
            status = HTTPStatus(self._reject_status)
            return connection.respond(status, f"{status.phrase} (fake_live.reject_next)\n")
        refusal = _handshake_problem(request)
        if refusal is None:
            return None
        status, message = refusal
        self._recorder.violation("handshake", message)
        return connection.respond(status, message + "\n")

    async def _handle(self, ws: ServerConnection) -> None:
        replies = self.config.replies or (LiveReply(),)
        index = 0

        def next_reply() -> LiveReply:
            nonlocal index
            reply = replies[min(index, len(replies) - 1)]
            index += 1
            return reply

        session = LiveSession(ws, self.config, self._recorder, len(self.sessions) + 1, next_reply)
        self.sessions.append(session)
        await session.serve()


def _handshake_problem(request: Request) -> tuple[HTTPStatus, str] | None:
    url = urlsplit(request.path)
    if url.path != _PATH:
        return HTTPStatus.NOT_FOUND, f"unknown path {url.path!r}; expected {_PATH!r}"
    if url.query:
        code = "invalid_model" if "model" in url.query else "unknown_parameter"
        return (
            HTTPStatus.BAD_REQUEST,
            f'{{"error": {{"code": "{code}", "message": "GPT-Live takes no query parameters; '
            f'send the model in session.start", "type": "invalid_request_error"}}}}',
        )
    authorization = request.headers.get("Authorization", "")
    if not authorization.startswith("Bearer ") or not authorization[7:].strip():
        return HTTPStatus.UNAUTHORIZED, "missing or malformed 'Authorization: Bearer <key>' header"
    return None
