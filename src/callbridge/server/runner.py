"""Running the ASGI app under uvicorn: in the foreground for `serve`, in-process for tests.

Owns the uvicorn configuration (httptools, the sans-I/O websockets implementation) and learning
the port when asked for port 0.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette

from callbridge.server.limits import HeaderTimeoutProtocol


def uvicorn_config(app: Starlette, host: str, port: int, log_level: str = "info") -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        ws="websockets-sansio",
        http=HeaderTimeoutProtocol,  # httptools, with a deadline for request headers
        lifespan="on",
        access_log=False,
        log_config=None,  # uvicorn's lines go through our structured logging
        ws_max_size=1024 * 1024,
        ws_ping_interval=None,  # Twilio's stream is never idle; its audio is the keepalive
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
