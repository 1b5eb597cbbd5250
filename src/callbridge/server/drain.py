"""Graceful shutdown: on SIGTERM stop admitting, let live calls finish, then wrap up and exit 0.

Owns the uvicorn server used by `callbridge serve`. Plain uvicorn closes every WebSocket at once
on SIGTERM (and re-raises the signal on exit); a deploy would cut every caller off. Here the first
SIGTERM starts a drain instead: new calls get the overflow TwiML and `/readyz` turns 503; live
calls go on for up to `CALLBRIDGE_DRAIN_SECONDS`; calls still up then are wrapped up (the agent
says a closing line and hangs up); then the server stops and the process exits 0. A second
SIGTERM, or SIGINT, stops at once.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn

from callbridge.logs import get_logger

if TYPE_CHECKING:
    from callbridge.server.app import CallbridgeServer

log = get_logger("callbridge.drain")
WRAP_UP_GRACE_S = 25.0  # a closing line, its playback and the REST hang-up


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, state: CallbridgeServer,
                 drain_seconds: float) -> None:
        super().__init__(config)
        self._state = state
        self._drain_seconds = drain_seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM or self._drain is not None or self._loop is None:
            super().handle_exit(sig, frame)
            return
        self._loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        if self._drain is None:
            self._drain = asyncio.ensure_future(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        await drain(self._state, self._drain_seconds)
        self.should_exit = True


async def drain(state: CallbridgeServer, seconds: float) -> None:
    """Stop admitting; wait up to `seconds` for live calls; wrap up the rest."""
    state.admission.draining = True
    log.info("draining: no new calls", live_calls=len(state.calls), drain_seconds=seconds)
    if not await state.calls.wait_until_empty(seconds):
        log.info("drain deadline reached: wrapping up", live_calls=len(state.calls))
        for bridge in state.calls.live():
            bridge.wrap_up("server draining for shutdown")
        await state.calls.wait_until_empty(WRAP_UP_GRACE_S)
    log.info("drained", calls_left=len(state.calls))
