"""An upstream socket's keepalive: a network that stops carrying anything is given up within the
stall deadline (GPT-Live's events cannot tell a stall from a model with nothing to say), and a
quiet but healthy socket is kept."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.protocol import State

from callbridge.config import Settings
from callbridge.core.timing import Timing
from callbridge.server.upstream import (
    CLOSE_TIMEOUT_S,
    DEFAULT_KEEPALIVE,
    RealtimeSocket,
    describe_close,
    keepalive,
    open_realtime,
)
from callbridge.testing.fault_proxy import FaultProxy

STALL_S = 2.0


async def _quiet(ws: ServerConnection) -> None:
    """Says nothing; websockets answers the client's pings by itself."""
    async for _ in ws:
        pass


@contextlib.asynccontextmanager
async def opened() -> AsyncIterator[tuple[RealtimeSocket, FaultProxy]]:
    """An upstream socket opened by `open_realtime` (stall deadline `STALL_S`) to a quiet
    server, through a fault proxy."""
    async with serve(_quiet, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with FaultProxy("127.0.0.1", port) as proxy:
            settings = Settings(openai_url=f"ws://127.0.0.1:{proxy.port}/v1/realtime",
                                timing=Timing(upstream_stall_s=STALL_S))
            socket = await open_realtime(settings, settings.agent)
            socket.attach(lambda data: None)
            try:
                yield socket, proxy
            finally:
                await socket.close()


@pytest.mark.parametrize("stall_s", [2.0, 3.0, 10.0])
def test_a_ping_and_its_pong_and_the_close_fit_in_the_stall_deadline(stall_s: float) -> None:
    """The next ping, its pong's timeout and the wait for a close frame add up to the deadline."""
    interval, timeout = keepalive(stall_s)
    assert interval + timeout + CLOSE_TIMEOUT_S == pytest.approx(stall_s)
    assert timeout == pytest.approx(2 * interval)


def test_a_deadline_under_twice_the_close_wait_gives_the_pings_half_of_it() -> None:
    """Less than twice `CLOSE_TIMEOUT_S`: the ping and its pong get half the deadline."""
    short = CLOSE_TIMEOUT_S * 1.6
    assert sum(keepalive(short)) == pytest.approx(short / 2)


def test_without_a_stall_deadline_websockets_defaults_are_kept() -> None:
    assert keepalive(None) == DEFAULT_KEEPALIVE


async def test_a_stalled_network_fails_the_socket_within_the_stall_deadline() -> None:
    """No FIN, no RST, nothing: the unanswered ping fails the socket (1011) in time."""
    async with opened() as (socket, proxy):
        loop = asyncio.get_running_loop()
        stalled_at = loop.time()
        proxy.stall()
        async with asyncio.timeout(STALL_S + 1.0):
            await socket.wait_closed()
        assert loop.time() - stalled_at < STALL_S + 0.2
        assert describe_close(socket.close_exc) == "keepalive ping timeout (1011)"


async def test_a_quiet_healthy_socket_is_kept() -> None:
    """Nothing but pings and pongs for twice the deadline: the socket stays open."""
    async with opened() as (socket, _):
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(2 * STALL_S):
                await socket.wait_closed()
        assert socket.protocol.state is State.OPEN
