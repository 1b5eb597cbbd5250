"""The media socket's synchronous lane and silence watchdog, over real loopback sockets.

A tiny Starlette app served by `runner.running` (so by `MediaSocketProtocol`) stands in for the
bridge: it reads the first message through ASGI, as the bridge reads `start`, then attaches to
the lane and echoes through it.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import socket
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side

from callbridge.server import media_socket
from callbridge.server.frame_reader import FrameReader
from callbridge.server.media_socket import lane_of, text_frame
from callbridge.server.runner import RunningServer, running


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 70000])
def test_text_frame_is_what_websockets_would_send(size: int) -> None:
    payload = b"x" * size
    assert text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False)


async def _echo_through_the_lane(ws: WebSocket) -> None:
    await ws.accept()
    first = await ws.receive_text()
    await asyncio.sleep(0.3)  # the client's next messages queue up meanwhile
    lane = lane_of(ws)
    assert lane is not None
    lane.send_text(f"first:{first}")
    lane.attach(lambda data: lane.send_texts([f"echo:{data.decode()}", f"mark:{data.decode()}"]))
    message = await ws.receive()  # only the disconnect comes this way now
    assert message["type"] == "websocket.disconnect"


async def _idle(ws: WebSocket) -> None:
    await ws.accept()
    message = await ws.receive()
    while message["type"] != "websocket.disconnect":
        message = await ws.receive()


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    app = Starlette(routes=[WebSocketRoute("/lane", _echo_through_the_lane),
                            WebSocketRoute("/idle", _idle)])
    async with running(app) as served:
        yield served


async def test_messages_queued_before_attach_then_live_ones_reach_the_lane_in_order(
    server: RunningServer,
) -> None:
    async with connect(f"ws://127.0.0.1:{server.port}/lane") as ws:
        for i in range(4):
            await ws.send(f"m{i}")
        replies = [await asyncio.wait_for(ws.recv(), 2) for _ in range(7)]
        await ws.send("m4")
        replies += [await asyncio.wait_for(ws.recv(), 2) for _ in range(2)]
    assert replies == ["first:m0", "echo:m1", "mark:m1", "echo:m2", "mark:m2", "echo:m3",
                       "mark:m3", "echo:m4", "mark:m4"]


async def _handshake(port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    return reader, writer


def _masked_text(payload: bytes) -> bytes:
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + body


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """True once the server ends the connection (EOF or reset) within `seconds`."""
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(4096):
                pass  # pings, unanswered
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


@pytest.fixture
def quick_watchdog(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(media_socket, "_SILENCE_CHECK_S", 0.2)
    monkeypatch.setattr(media_socket, "SILENT_AFTER_S", 0.6)
    return 0.6


async def test_a_peer_that_sends_nothing_is_cut_off(server: RunningServer,
                                                     quick_watchdog: float) -> None:
    """Half-open: no data, no pongs. The socket is aborted soon after the silence limit."""
    reader, writer = await _handshake(server.port, "/idle")
    try:
        assert await _closed_within(reader, quick_watchdog + 1.0)
    finally:
        writer.close()


async def test_a_peer_that_talks_but_never_answers_pings_is_kept(server: RunningServer,
                                                                  quick_watchdog: float) -> None:
    reader, writer = await _handshake(server.port, "/idle")
    try:
        for _ in range(10):  # 2 s, over three times the silence limit
            writer.write(_masked_text(b'{"event":"media"}'))
            await asyncio.sleep(0.2)
        assert not await _closed_within(reader, 0.1)
    finally:
        writer.close()


def _client_frames(index: int, text: str) -> bytes:
    """Message `index` as a client sends it: sometimes after a ping, sometimes in fragments."""
    frames = b""
    if index % 7 == 3:
        frames += Frame(Opcode.PING, b"p%d" % index).serialize(mask=True)
    if index % 5 == 4:
        data = text.encode()
        return frames + (Frame(Opcode.TEXT, data[:2], fin=False).serialize(mask=True)
                         + Frame(Opcode.CONT, data[2:]).serialize(mask=True))
    return frames + Frame(Opcode.TEXT, text.encode()).serialize(mask=True)


@pytest.mark.parametrize("seed", range(3))
async def test_frames_cut_anywhere_among_pings_and_fragments_reach_the_lane_in_order(
    server: RunningServer, seed: int, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whole text frames take the hand-written reader; pings and fragments go to websockets,
    which gives the stream back once it is between frames; a frame cut across reads is joined.
    Nothing is lost, repeated or reordered."""
    rng = random.Random(seed)
    read_by_hand: list[bytes] = []
    read = FrameReader.read

    def counting(self: FrameReader, data: bytes) -> tuple[list[bytes], bytes]:
        payloads, rest = read(self, data)
        read_by_hand.extend(payloads)
        return payloads, rest

    monkeypatch.setattr(FrameReader, "read", counting)
    reader, writer = await _handshake(server.port, "/lane")
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    texts = [f"message-{i}-" + "x" * rng.randrange(0, 300) for i in range(60)]
    replies = Protocol(Side.CLIENT)
    got: list[str] = []
    writer.write(_client_frames(0, texts[0]))  # read through ASGI; then the app attaches
    async with asyncio.timeout(5):
        while not got:
            replies.receive_data(await reader.read(65536))
            got += [frame.data.decode() for frame in replies.events_received()]
    await asyncio.sleep(0.05)
    frames = [_client_frames(i, text) for i, text in enumerate(texts) if i]
    while frames:
        count = rng.randrange(1, 4)
        group = b"".join(frames[:count])
        del frames[:count]
        cut = rng.randrange(1, len(group)) if rng.random() < 0.3 else len(group)
        for piece in (group[:cut], group[cut:]):
            if piece:
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0.002)
    pongs = 0
    async with asyncio.timeout(5):
        while len(got) < 1 + 2 * (len(texts) - 1):
            replies.receive_data(await reader.read(65536))
            for frame in replies.events_received():
                if frame.opcode is Opcode.PONG:
                    pongs += 1
                elif frame.opcode is Opcode.TEXT:
                    got.append(frame.data.decode())
    writer.close()
    expected = [f"first:{texts[0]}"]
    for text in texts[1:]:
        expected += [f"echo:{text}", f"mark:{text}"]
    assert got == expected
    assert pongs == sum(1 for i in range(len(texts)) if i % 7 == 3)
    assert len(read_by_hand) >= len(texts) // 3  # the rest went through websockets
