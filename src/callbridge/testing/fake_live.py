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

from collections.abc import Sequence
from http import HTTPStatus
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request

from callbridge.testing.fake_live_config import (
    FakeLiveConfig,
    LiveRecorder,
    LiveReply,
    LiveToolCall,
)
from callbridge.testing.fake_live_delegation import Delegation
from callbridge.testing.fake_live_session import LiveSession
from callbridge.testing.fake_live_speech import Utterance
from callbridge.testing.fake_model_server import FakeModelServer, bearer_problem
from callbridge.testing.live_validation import preload_live

__all__ = ["Delegation", "FakeLiveServer", "LiveReply", "LiveSession", "LiveToolCall", "Utterance"]

_PATH = "/v1/live/sessions"


class FakeLiveServer(FakeModelServer[LiveSession]):
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
    `url` is `ws://127.0.0.1:PORT/v1/live/sessions`, to connect to as it is.
    """

    path = _PATH
    name = "fake_live"

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
        self._live_recorder = LiveRecorder()
        super().__init__(self._live_recorder)
        self.sessions: list[LiveSession] = self._open

    async def stop(self) -> None:
        """Close every session (1001), stalled ones too, and stop listening. Safe twice."""
        self._live_recorder.sending.set()
        await super().stop()

    # ---- what happened ----------------------------------------------------------------------

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

    # ---- controls ---------------------------------------------------------------------------

    def stall(self) -> None:
        """Stop sending anything on every session (sockets stay open) until `resume()`."""
        self._live_recorder.sending.clear()

    def resume(self) -> None:
        self._live_recorder.sending.set()

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

    # ---- this server ------------------------------------------------------------------------

    _preload = staticmethod(preload_live)

    @staticmethod
    def _handshake_problem(request: Request) -> tuple[HTTPStatus, str] | None:
        url = urlsplit(request.path)
        if url.path != _PATH:
            return HTTPStatus.NOT_FOUND, f"unknown path {url.path!r}; expected {_PATH!r}"
        if url.query:
            code = "invalid_model" if "model" in url.query else "unknown_parameter"
            return (
                HTTPStatus.BAD_REQUEST,
                f'{{"error": {{"code": "{code}", "message": "GPT-Live takes no query '
                f'parameters; send the model in session.start", '
                f'"type": "invalid_request_error"}}}}',
            )
        return bearer_problem(request)

    async def _handle(self, ws: ServerConnection) -> None:
        replies = self.config.replies or (LiveReply(),)
        index = 0

        def next_reply() -> LiveReply:
            nonlocal index
            reply = replies[min(index, len(replies) - 1)]
            index += 1
            return reply

        session = LiveSession(ws, self.config, self._live_recorder, len(self.sessions) + 1,
                              next_reply)
        self.sessions.append(session)
        await session.serve()

