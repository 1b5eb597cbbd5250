"""`RealtimeSocket`'s synchronous lane against a real websockets server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from callbridge.server.upstream import RealtimeSocket, describe_close

received: list[str] = []


async def _talker(ws: ServerConnection) -> None:
    """Sends at once (before the client can attach), one message fragmented, then echoes."""
    await ws.send("one")
    await ws.send(["t", "w", "o"])  # three frames: TEXT, CONT, CONT
    await ws.send(b"three")
    async for message in ws:
        received.append(str(message))
        if message == "close please":
            await ws.close(4000, "asked to")
            return
        await ws.send(f"echo:{message}")


@pytest.fixture
async def url() -> AsyncIterator[str]:
    received.clear()
    async with serve(_talker, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/"


async def _open(url: str) -> RealtimeSocket:
    socket = await connect(url, create_connection=RealtimeSocket)
    assert isinstance(socket, RealtimeSocket)
    return socket


async def test_messages_held_until_attach_then_delivered_in_order_and_whole(url: str) -> None:
    socket = await _open(url)
    await asyncio.sleep(0.2)  # everything the server sent first has arrived and is held
    got: list[bytes] = []
    echoed = asyncio.Event()

    def on_message(data: bytes) -> None:
        got.append(data)
        if data.startswith(b"echo:"):
            echoed.set()

    socket.attach(on_message)
    assert got == [b"one", b"two", b"three"]
    socket.send_now("hello")
    async with asyncio.timeout(2):
        await echoed.wait()
    assert got[3] == b"echo:hello"
    assert received == ["hello"]
    await socket.close()


async def test_the_close_is_seen_by_wait_closed_with_its_reason(url: str) -> None:
    socket = await _open(url)
    socket.attach(lambda data: None)
    socket.send_now("close please")
    async with asyncio.timeout(2):
        await socket.wait_closed()
    assert describe_close(socket.close_exc) == "4000 asked to"
    socket.send_now("too late")  # dropped, not raised


async def test_a_handler_that_raises_fails_the_socket(url: str) -> None:
    socket = await _open(url)

    def explode(data: bytes) -> None:
        raise RuntimeError("bug in the handler")

    socket.attach(explode)  # the held messages reach it at once
    async with asyncio.timeout(2):
        await socket.wait_closed()
    sent = socket.close_exc.sent
    assert sent is not None
    assert sent.code == 1011


async def test_a_detached_socket_delivers_nothing_more(url: str) -> None:
    """What a socket being closed still receives (a stalled session's held events) must not
    reach the session that replaced it."""
    socket = await _open(url)
    got: list[bytes] = []
    echoed = asyncio.Event()

    def on_message(data: bytes) -> None:
        got.append(data)
        if data == b"echo:before":
            echoed.set()

    socket.attach(on_message)
    socket.send_now("before")
    async with asyncio.timeout(2):
        await echoed.wait()
    socket.detach()
    socket.send_now("after")
    await asyncio.sleep(0.2)  # the echo of "after" arrives, and goes nowhere
    assert received == ["before", "after"]
    assert b"echo:after" not in got
    await socket.close()
