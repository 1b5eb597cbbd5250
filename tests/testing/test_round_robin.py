"""The round-robin balancer between real loopback clients and small named servers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from callbridge.testing.round_robin import RoundRobinProxy


@contextlib.asynccontextmanager
async def named_server(name: bytes) -> AsyncIterator[int]:
    """A server that answers every connection with its name plus what it received."""
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read(100)
        writer.write(name + b":" + data)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def ask(proxy: RoundRobinProxy, message: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
    writer.write(message)
    await writer.drain()
    answer = await reader.read(100)
    writer.close()
    return answer


async def test_each_new_connection_goes_to_the_next_target() -> None:
    """Six connections over three targets: a, b, c, a, b, c — bytes both ways intact."""
    async with named_server(b"a") as a, named_server(b"b") as b, named_server(b"c") as c:
        targets = [("127.0.0.1", a), ("127.0.0.1", b), ("127.0.0.1", c)]
        async with RoundRobinProxy(targets) as proxy:
            answers = [await ask(proxy, b"hi") for _ in range(6)]
            assert answers == [b"a:hi", b"b:hi", b"c:hi", b"a:hi", b"b:hi", b"c:hi"]
            assert proxy.accepted == [2, 2, 2]


async def test_a_target_that_refuses_is_skipped() -> None:
    """A dead target costs nothing but its turn: the next live one answers."""
    async with named_server(b"a") as a:
        async with named_server(b"gone") as gone:
            pass  # closed: its port now refuses
        async with RoundRobinProxy([("127.0.0.1", gone), ("127.0.0.1", a)]) as proxy:
            assert [await ask(proxy, b"x") for _ in range(2)] == [b"a:x", b"a:x"]
            assert proxy.accepted == [0, 2]


def test_it_refuses_targets_off_this_host() -> None:
    """Only loopback: a test must not balance onto the network."""
    with pytest.raises(ValueError, match="loopback"):
        RoundRobinProxy([("10.0.0.1", 80)])
