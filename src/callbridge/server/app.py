"""The ASGI application: the voice webhook, the Twilio media socket and the health probes.

Owns request handling at the edge: signature checks against the configured public URL, minting
and redeeming one-time stream tokens, and handing admitted media sockets to their call's bridge.
Refusals happen before any work: an unsigned upgrade is refused before `accept()` (HTTP 403).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from callbridge.config import Settings
from callbridge.core import twilio_messages as tw
from callbridge.core.signature import SignatureChecker
from callbridge.core.tokens import StreamTokens
from callbridge.core.twiml import connect_stream
from callbridge.errors import TwilioProtocolError
from callbridge.server.registry import CallRegistry

log = logging.getLogger("callbridge.server")

START_TIMEOUT_S = 10.0
MAX_FRAMES_BEFORE_START = 8


class CallbridgeServer:
    """Per-process state shared by the handlers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.signatures = SignatureChecker(settings.twilio_auth_token, settings.public_url)
        self.tokens = StreamTokens(settings.stream_token_ttl)
        self.calls = CallRegistry(settings)
        self.accepting = True

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def voice(self, request: Request) -> Response:
        """Twilio's incoming-call webhook: answer `<Connect><Stream>` and pre-open the upstream."""
        form = await request.form()
        params = {key: str(value) for key, value in form.multi_items()}
        signature = request.headers.get("x-twilio-signature")
        if not self.signatures.webhook_ok(request.url.path, request.url.query, form, signature):
            log.warning("voice webhook refused: bad or missing X-Twilio-Signature")
            return PlainTextResponse("invalid Twilio signature\n", status_code=403)
        call_sid = params.get("CallSid", "")
        if not call_sid:
            return PlainTextResponse("CallSid is missing\n", status_code=400)
        token = secrets.token_urlsafe(24)
        self.tokens.issue(token, call_sid, params.get("From", ""), params.get("To", ""), self.now())
        self.calls.open(call_sid)
        twiml = connect_stream(
            self.settings.stream_url,
            {"token": token, "from": params.get("From", ""), "to": params.get("To", "")},
            apology=self.settings.apology,
        )
        return Response(twiml, media_type="text/xml")

    async def media_stream(self, ws: WebSocket) -> None:
        """Twilio's media socket: signature before accept, token on `start`, then the bridge."""
        signature = ws.headers.get("x-twilio-signature")
        if not self.signatures.upgrade_ok(ws.url.path, ws.url.query, signature):
            log.warning("media socket refused: bad or missing X-Twilio-Signature")
            await ws.close(code=1008)
            return
        await ws.accept()
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                frames, start = await _read_until_start(ws)
        except (TimeoutError, WebSocketDisconnect):
            log.warning("media socket closed: no valid `start` within %s s", START_TIMEOUT_S)
            await _close_quietly(ws)
            return
        if start is None:
            await _close_quietly(ws)
            return
        token = start.custom_parameters.get("token", "")
        if self.tokens.redeem(token, start.call_sid, self.now()) is None:
            log.warning("media socket refused: stream token missing, used, expired or foreign")
            await _close_quietly(ws)
            return
        bridge = self.calls.open(start.call_sid)
        if bridge.attached:
            log.warning("media socket refused: the call already has a media stream")
            await _close_quietly(ws)
            return
        await bridge.serve_twilio(ws, frames)

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        ready = self.accepting
        body = {"ready": ready, "active_calls": len(self.calls)}
        return JSONResponse(body, status_code=200 if ready else 503)


async def _read_until_start(ws: WebSocket) -> tuple[list[str | bytes], tw.Start | None]:
    """Frames up to and including `start` (Twilio sends `connected`, then `start`)."""
    frames: list[str | bytes] = []
    while len(frames) < MAX_FRAMES_BEFORE_START:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        frame: str | bytes = message.get("text") or message.get("bytes") or b""
        frames.append(frame)
        try:
            parsed = tw.parse(frame)
        except TwilioProtocolError:
            continue
        if isinstance(parsed, tw.Start):
            return frames, parsed
    return frames, None


async def _close_quietly(ws: WebSocket) -> None:
    with suppress(RuntimeError, OSError):
        await ws.close(code=1008)


def create_app(settings: Settings) -> Starlette:
    """The ASGI app for `settings`. Its `state.callbridge` is the `CallbridgeServer`."""
    server = CallbridgeServer(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        server.accepting = False
        await server.calls.close_all()

    app = Starlette(
        routes=[
            Route("/voice", server.voice, methods=["POST"]),
            WebSocketRoute("/twilio/stream", server.media_stream),
            Route("/healthz", server.healthz, methods=["GET"]),
            Route("/readyz", server.readyz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.callbridge = server
    return app
