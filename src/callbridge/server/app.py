"""The ASGI application: routes, per-process state and its lifespan.

Owns wiring: the Twilio-facing routes (`twilio_routes`), the JSON API (`api`), the live-call API
(`live_api`) and this instance's link to the others (`cluster`), the console
(`callbridge.server.console`), the health probes,
and starting/stopping the call record's writer (and, with `--with-worker`, the post-call
analytics worker) around them. On shutdown live calls are closed first, so their final records
reach the writer before it drains.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from callbridge.analytics.service import BackgroundWorker
from callbridge.config import Settings
from callbridge.core.signature import SignatureChecker
from callbridge.core.tokens import StreamTokens, derive_secret
from callbridge.errors import ConfigError
from callbridge.server import api, live_api, twilio_routes
from callbridge.server.admission import Admission
from callbridge.server.bridge import Bridge
from callbridge.server.cluster import Cluster, PostgresCluster
from callbridge.server.console import routes as console_routes
from callbridge.server.limits import BodySizeLimit
from callbridge.server.live_calls import LiveCalls
from callbridge.server.live_feed import LiveFeed
from callbridge.server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from callbridge.server.metrics import Metrics
from callbridge.server.recordings import RecordingStore
from callbridge.server.registry import CallRegistry
from callbridge.server.twilio_rest import TwilioRest
from callbridge.store.journal import Journal
from callbridge.store.repository import CallStore
from callbridge.store.sink import NULL_SINK
from callbridge.store.writer import StoreWriter

log = logging.getLogger("callbridge.server")


class CallbridgeServer:
    """Per-process state shared by the handlers."""

    def __init__(self, settings: Settings, *, with_worker: bool = False) -> None:
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
        self.metrics = Metrics()
        self.admission = Admission(settings.max_calls, settings.overflow_number)
        self.recordings = RecordingStore(settings.recordings_dir, settings.api_token or
                                         settings.token_secret or settings.twilio_auth_token)
        self.calls = CallRegistry(settings, self.writer if self.writer is not None else NULL_SINK,
                                  metrics=self.metrics,
                                  on_upstream_down=lambda: self.admission.upstream_down(self.now()),
                                  recordings=self.recordings, on_forgotten=self._forgotten)
        self.cluster: Cluster = Cluster(settings.instance_id, self.store)
        if self.store is not None and self.store.engine.dialect.name == "postgresql":
            self.cluster = PostgresCluster(settings.instance_id, self.store,
                                           self.store.database_url,
                                           sweep_every=settings.sweep_seconds)
        self.feed = LiveFeed(self.cluster)
        self.live = LiveCalls(self)
        self.cluster.handler = self.live.handle
        self.calls.taken_elsewhere = self.live.taken_elsewhere
        self._finishing: set[asyncio.Task[None]] = set()
        self._watch()
        self.recovered_calls: list[str] = []
        self.analytics: BackgroundWorker | None = None  # `serve --with-worker`
        if with_worker and self.store is not None:
            self.analytics = BackgroundWorker(settings, self.store, name=settings.instance_id)

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def _forgotten(self, bridge: Bridge) -> None:
        """A call left this instance: its followers get the end; the others learn it ended."""
        self.feed.ended(bridge.call_sid, bridge.session.end_reason or "ended")
        if self.cluster.shared:
            task = asyncio.ensure_future(self.cluster.finished(bridge.call_sid))
            self._finishing.add(task)
            task.add_done_callback(self._finishing.discard)

    @property
    def accepting(self) -> bool:
        return self.admission.refusal(len(self.calls), self.now()) is None

    def _watch(self) -> None:
        metrics = self.metrics
        metrics.watch(lambda: [bridge.session.stats for bridge in self.calls.live()])
        metrics.active_calls.set_function(lambda: len(self.calls))
        metrics.draining.set_function(lambda: int(self.admission.draining))
        writer = self.writer
        if writer is not None:
            metrics.writer_queue.set_function(lambda: writer.queue_depth)
            metrics.records_dropped.set_function(lambda: writer.stats.dropped)
            metrics.records_rejected.set_function(lambda: writer.stats.rejected)

    async def metrics_page(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type=METRICS_CONTENT_TYPE)

    async def _measure_loop_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.25)
            self.metrics.loop_lag.observe(max(0.0, loop.time() - before - 0.25))

    async def start(self) -> None:
        settings = self.settings
        self._lag_task = asyncio.create_task(self._measure_loop_lag(), name="loop-lag")
        if settings.twilio_account_sid and settings.twilio_auth_token:
            self.calls.rest = TwilioRest(settings.twilio_api_url, settings.twilio_account_sid,
                                         settings.twilio_auth_token, cps=settings.outbound_cps)
        try:
            await self.cluster.start()  # refuses a duplicate CALLBRIDGE_INSTANCE_ID
        except ConfigError as exc:
            log.error("callbridge: %s", exc)
            raise
        if self.writer is not None:
            self.recovered_calls = await self.writer.start()
        if self.analytics is not None:
            await self.analytics.start()

    async def stop(self) -> None:
        self.admission.draining = True
        self._lag_task.cancel()
        await self.calls.close_all()
        if self._finishing:
            await asyncio.wait(self._finishing, timeout=5.0)
        await self.feed.close()
        await self.cluster.stop()
        if self.calls.rest is not None:
            await self.calls.rest.aclose()
        if self.writer is not None:
            await self.writer.close()
        if self.analytics is not None:
            await self.analytics.stop()
        if self.store is not None:
            await self.store.close()

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        refusal = self.admission.refusal(len(self.calls), self.now())
        body = {"ready": refusal is None, "active_calls": len(self.calls), "reason": refusal}
        return JSONResponse(body, status_code=200 if refusal is None else 503)


def create_app(settings: Settings, *, with_worker: bool = False) -> Starlette:
    """The ASGI app for `settings`. Its `state.callbridge` is the `CallbridgeServer`. With
    `with_worker`, the post-call analytics worker runs in-process (needs the call record)."""
    server = CallbridgeServer(settings, with_worker=with_worker)

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
            *live_api.routes(server),  # before /api/calls/{call_sid}: "live" is no CallSid
            Route("/api/calls/{call_sid}", api.get_call(server), methods=["GET"]),
            Route("/api/calls/{call_sid}/recording", api.recording_link(server),
                  methods=["GET"]),
            Route("/recordings/{call_sid}.wav", api.recording_file(server), methods=["GET"]),
            Route("/healthz", server.healthz, methods=["GET"]),
            Route("/readyz", server.readyz, methods=["GET"]),
            Route("/metrics", server.metrics_page, methods=["GET"]),
            *console_routes(server),
        ],
        middleware=[Middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)],
        lifespan=lifespan,
    )
    app.state.callbridge = server
    return app
