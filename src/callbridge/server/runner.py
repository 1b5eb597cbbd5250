"""Running the ASGI app under uvicorn: in the foreground for `serve`, in-process for tests.

Owns the uvicorn configuration (httptools with a header deadline, the sans-I/O websockets
protocol with the media socket's synchronous lane, keepalive pings) and learning the port when
asked for port 0.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette

from callbridge.server.limits import HeaderTimeoutProtocol
from callbridge.server.media_socket import MediaSocketProtocol

# Pings keep bytes flowing on a socket whose peer is alive even when it sends nothing, so the
# media socket's silence watchdog (`media_socket.SILENT_AFTER_S`) only ends half-open ones. No
# pong deadline: a peer that ignores pings but sends audio is alive.
PING_INTERVAL_S = 2.0


def uvicorn_config(app: Starlette, host: str, port: int, log_level: str = "info") -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        ws=MediaSocketProtocol,
        http=HeaderTimeoutProtocol,  # httptools, with a deadline for request headers
        lifespan="on",
        access_log=False,
        log_config=None,  # uvicorn's lines go through our structured logging
        ws_max_size=1024 * 1024,
        ws_ping_interval=PING_INTERVAL_S,
        ws_ping_timeout=None,
        timeout_graceful_shutdown=5,
    )


@dataclass
class RunningServer:
    app: Starlette
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextlib.asynccontextmanager
async def running(app: Starlette, host: str = "127.0.0.1", port: int = 0,
                  log_level: str = "warning") -> AsyncIterator[RunningServer]:
    """Serve `app` in this event loop until the block exits; yields where it listens."""
    server = uvicorn.Server(uvicorn_config(app, host, port, log_level))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.01)
    sockets = [s for srv in server.servers for s in srv.sockets]
    bound_port = sockets[0].getsockname()[1]
    try:
        yield RunningServer(app, host, bound_port)
    finally:
        server.should_exit = True
        await task
