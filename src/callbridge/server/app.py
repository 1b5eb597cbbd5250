"""The ASGI application: routes, per-process state and its lifespan.

Owns wiring: the Twilio-facing routes (`twilio_routes`), the JSON API (`api`), the health probes,
and starting/stopping the call record's writer around them. On shutdown live calls are closed
first, so their final records reach the writer before it drains.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from callbridge.config import Settings
from callbridge.core.signature import SignatureChecker
from callbridge.core.tokens import StreamTokens, derive_secret
from callbridge.server import api, twilio_routes
from callbridge.server.registry import CallRegistry
from callbridge.server.twilio_rest import TwilioRest
from callbridge.store.journal import Journal
from callbridge.store.repository import CallStore
from callbridge.store.sink import NULL_SINK
from callbridge.store.writer import StoreWriter

log = logging.getLogger("callbridge.server")


class CallbridgeServer:
    """Per-process state shared by the handlers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.signatures = SignatureChecker(settings.twilio_auth_token, settings.public_url)
        self.tokens = StreamTokens(derive_secret(settings.token_secret or
                                                 settings.twilio_auth_token),
                                   settings.stream_token_ttl)
        self.store: CallStore | None = None
        self.writer: StoreWriter | None = None
        if settings.database_url is not None:
            self.store = CallStore(settings.database_url)
            self.writer = StoreWriter(self.store, Journal(settings.journal_path),
                                      instance=settings.instance_id)
        self.calls = CallRegistry(settings, self.writer if self.writer is not None else NULL_SINK)
        self.accepting = True
        self.recovered_calls: list[str] = []

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def start(self) -> None:
        settings = self.settings
        if settings.twilio_account_sid and settings.twilio_auth_token:
            self.calls.rest = TwilioRest(settings.twilio_api_url, settings.twilio_account_sid,
                                         settings.twilio_auth_token, cps=settings.outbound_cps)
        if self.writer is not None:
            self.recovered_calls = await self.writer.start()

    async def stop(self) -> None:
        self.accepting = False
        await self.calls.close_all()
        if self.calls.rest is not None:
            await self.calls.rest.aclose()
        if self.writer is not None:
            await self.writer.close()
        if self.store is not None:
            await self.store.close()

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        ready = self.accepting
        body = {"ready": ready, "active_calls": len(self.calls)}
        return JSONResponse(body, status_code=200 if ready else 503)


def create_app(settings: Settings) -> Starlette:
    """The ASGI app for `settings`. Its `state.callbridge` is the `CallbridgeServer`."""
    server = CallbridgeServer(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await server.start()
        yield
        await server.stop()

    app = Starlette(
        routes=[
            Route("/voice", twilio_routes.voice(server), methods=["POST"]),
            Route("/twilio/status", twilio_routes.status(server), methods=["POST"]),
            Route("/twilio/outbound", twilio_routes.outbound_answer(server), methods=["POST"]),
            Route("/twilio/amd", twilio_routes.amd(server), methods=["POST"]),
            Route("/twilio/recording", twilio_routes.recording(server), methods=["POST"]),
            WebSocketRoute("/twilio/stream", twilio_routes.media_stream(server)),
            Route("/api/calls", api.list_calls(server), methods=["GET"]),
            Route("/api/calls", api.place_call(server), methods=["POST"]),
            Route("/api/calls/{call_sid}", api.get_call(server), methods=["GET"]),
            Route("/healthz", server.healthz, methods=["GET"]),
            Route("/readyz", server.readyz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.callbridge = server
    return app
