"""The fault proxy, between real loopback clients and an echo server, a WebSocket and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from types import ModuleType
from typing import Any, Literal

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed, ConnectionClosedError

from callbridge.testing.fault_proxy import FaultProxy

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]
PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PG_LOGIN = {"user": "postgres", "database": "test"}


class EchoServer:
    """A loopback TCP server that sends back every byte and closes after the client's EOF."""

    def __init__(self) -> None:
        self.handlers: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> EchoServer:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in self.handlers:
            task.cancel()
        await self.idle()
        await self.server.wait_closed()

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def idle(self) -> None:
        """Wait until every handler has finished."""
        if self.handlers:
            await asyncio.wait(self.handlers, timeout=2.0)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._echo(reader, writer))
        self.handlers.add(task)
        task.add_done_callback(self.handlers.discard)

    @staticmethod
    async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()
            with suppress(OSError):
                await writer.wait_closed()


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    async with EchoServer() as server:
        yield server


@pytest.fixture
async def proxy(echo: EchoServer) -> AsyncIterator[FaultProxy]:
    async with FaultProxy("127.0.0.1", echo.port) as proxy:
        yield proxy


@pytest.fixture
async def ws_proxy() -> AsyncIterator[FaultProxy]:
    async def echo_ws(ws: ServerConnection) -> None:
        with suppress(ConnectionClosed):
            async for message in ws:
                await ws.send(message)

    async with serve(echo_ws, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with FaultProxy("127.0.0.1", port) as proxy:
            yield proxy


@pytest.fixture
async def asyncpg() -> ModuleType:
    module = pytest.importorskip("asyncpg", reason="asyncpg is not installed")
    try:
        async with asyncio.timeout(2.0):
            connection = await module.connect(PG_DSN)
    except (OSError, TimeoutError, module.PostgresError) as exc:
        pytest.skip(f"no PostgreSQL answers at {PG_DSN}: {exc!r}")
    await connection.close()
    return module


@asynccontextmanager
async def client(proxy: FaultProxy) -> AsyncIterator[Stream]:
    """A plain TCP client connected through the proxy, closed (or already reset) on exit."""
    reader, writer = await asyncio.open_connection(*proxy.address)
    try:
        yield reader, writer
    finally:
        writer.close()
        with suppress(OSError):
            await writer.wait_closed()


async def round_trip(stream: Stream, data: bytes = b"ping") -> bytes:
    """Send `data` and read back as many bytes, within a second."""
    reader, writer = stream
    writer.write(data)
    await writer.drain()
    async with asyncio.timeout(1.0):
        return await reader.readexactly(len(data))


async def timed_round_trip(stream: Stream) -> float:
    start = time.perf_counter()
    assert await round_trip(stream) == b"ping"
    return time.perf_counter() - start


async def refused(proxy: FaultProxy) -> bool:
    """Whether a new connection through the proxy is reset or closed at once, without data."""
    async with asyncio.timeout(1.0), client(proxy) as (reader, writer):
        writer.write(b"hello")
        try:
            return await reader.read(5) == b""
        except ConnectionResetError:
            return True


async def read_to_the_end(reader: asyncio.StreamReader) -> tuple[bytes, OSError | None]:
    """Everything readable within a second, and the error that ended it (None for EOF)."""
    received = b""
    try:
        async with asyncio.timeout(1.0):
            while data := await reader.read(65536):
                received += data
    except OSError as exc:
        return received, exc
    return received, None


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_bytes_pass_through_unchanged_both_ways(proxy: FaultProxy) -> None:
    """5 MB of random bytes go up and come back down intact, and the counters say so."""
    payload = random.Random(1).randbytes(5_000_000)
    async with client(proxy) as (reader, writer):

        async def send() -> None:
            writer.write(payload)
            await writer.drain()
            writer.write_eof()

        sender = asyncio.create_task(send())
        async with asyncio.timeout(5.0):
            received = await reader.read()
        await sender
    assert received == payload
    assert (proxy.bytes_up, proxy.bytes_down, proxy.accepted) == (5_000_000, 5_000_000, 1)


async def test_websocket_messages_pass_through_unchanged(ws_proxy: FaultProxy) -> None:
    """Text and 512 KiB binary WebSocket messages echo through the proxy unchanged."""
    blob = random.Random(2).randbytes(512 * 1024)
    async with connect(f"ws://127.0.0.1:{ws_proxy.port}") as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"
        await ws.send(blob)
        assert await ws.recv() == blob


@pytest.mark.parametrize(
    ("up", "down"),
    [(0.1, 0.0), (0.0, 0.08), (0.1, 0.1)],
)
async def test_delay_adds_the_configured_latency_per_direction(
    proxy: FaultProxy, up: float, down: float
) -> None:
    """A round trip takes the up delay plus the down delay longer (±30 ms); delay(0) undoes it."""
    async with client(proxy) as stream:
        base = await timed_round_trip(stream)
        proxy.delay(up, "up")
        proxy.delay(down, "down")
        delayed = await timed_round_trip(stream)
        proxy.delay(0)
        undone = await timed_round_trip(stream)
    assert abs(delayed - base - (up + down)) < 0.03
    assert undone < 0.03


async def test_delay_keeps_the_order_of_chunks_even_when_it_shrinks(proxy: FaultProxy) -> None:
    """Chunks sent while the delay drops from 50 ms to 0 still arrive in the order sent."""
    proxy.delay(0.05)
    parts = [f"{i:04d};".encode() for i in range(100)]
    async with client(proxy) as (reader, writer):
        for i, part in enumerate(parts):
            if i == 50:
                proxy.delay(0)
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(0.001)  # separate reads at the proxy
        async with asyncio.timeout(2.0):
            received = await reader.readexactly(sum(map(len, parts)))
    assert received == b"".join(parts)


async def test_stall_holds_data_until_resume_then_delivers_all_of_it(proxy: FaultProxy) -> None:
    """While stalled nothing is forwarded and the connection stays open; resume sends it all."""
    payload = random.Random(3).randbytes(256 * 1024)
    proxy.stall()
    async with client(proxy) as (reader, writer):
        writer.write(payload)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await reader.read(1)
        assert (proxy.bytes_up, proxy.connections) == (0, 1)
        proxy.resume()
        await writer.drain()
        async with asyncio.timeout(2.0):
            assert await reader.readexactly(len(payload)) == payload


async def test_cut_with_abort_resets_the_client(proxy: FaultProxy) -> None:
    """cut() resets open connections: the client's next read fails with ECONNRESET."""
    async with client(proxy) as stream:
        await round_trip(stream)
        await proxy.cut()
        with pytest.raises(ConnectionResetError):
            async with asyncio.timeout(1.0):
                await stream[0].read(1)
    assert proxy.connections == 0


async def test_cut_without_abort_gives_the_client_a_clean_eof(proxy: FaultProxy) -> None:
    """cut(abort=False) closes with a FIN: the client reads EOF, not an error."""
    async with client(proxy) as stream:
        await round_trip(stream)
        await proxy.cut(abort=False)
        async with asyncio.timeout(1.0):
            assert await stream[0].read(1) == b""
    assert proxy.connections == 0


async def test_cut_closes_a_websocket_abnormally_without_a_close_frame(
    ws_proxy: FaultProxy,
) -> None:
    """A websockets client sees ConnectionClosedError with no close frame received: code 1006."""
    async with connect(f"ws://127.0.0.1:{ws_proxy.port}") as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"
        await ws_proxy.cut()
        with pytest.raises(ConnectionClosedError) as closed:
            async with asyncio.timeout(1.0):
                await ws.recv()
        assert closed.value.rcvd is None
        assert ws.close_code == 1006


async def test_refuse_fails_new_connections_fast_and_leaves_open_ones_working(
    proxy: FaultProxy,
) -> None:
    """While refusing, new connections are reset at once; open ones still echo; then it lifts."""
    async with client(proxy) as old:
        proxy.refuse(True)
        assert proxy.down
        assert await refused(proxy)
        assert await round_trip(old) == b"ping"
        proxy.refuse(False)
        assert not await refused(proxy)
    assert proxy.accepted == 3


async def test_outage_cuts_refuses_and_then_lets_a_new_connection_through(
    proxy: FaultProxy,
) -> None:
    """outage(0.5) resets open connections, refuses new ones, and recovers after 0.5 s."""
    async with client(proxy) as old:
        await round_trip(old)
        await proxy.outage(0.5)
        assert proxy.down
        with pytest.raises(ConnectionResetError):
            await round_trip(old)
        assert await refused(proxy)
        await asyncio.sleep(0.6)
        assert not proxy.down
        async with client(proxy) as new:
            assert await round_trip(new) == b"ping"


@pytest.mark.parametrize("direction", ["up", "down"])
async def test_corrupt_next_inverts_exactly_the_next_n_bytes(
    proxy: FaultProxy, direction: Literal["up", "down"]
) -> None:
    """corrupt_next(3) inverts the next 3 bytes in one direction, once; the rest pass intact."""
    payload = bytes(range(256)) * 4
    proxy.corrupt_next(3, direction)
    async with client(proxy) as stream:
        first = await round_trip(stream, payload)
        second = await round_trip(stream, payload)
    assert [i for i in range(len(payload)) if first[i] != payload[i]] == [0, 1, 2]
    assert first[:3] == bytes(255 - b for b in payload[:3])
    assert second == payload


async def test_cut_after_resets_the_connection_right_after_the_byte_count(
    proxy: FaultProxy,
) -> None:
    """cut_after(100) lets exactly 100 more bytes down, then resets; later connections are fine."""
    async with client(proxy) as (reader, writer):
        await round_trip((reader, writer), b"x" * 10)
        proxy.cut_after(100)
        writer.write(b"y" * 1000)
        received, error = await read_to_the_end(reader)
    assert received == b"y" * 100
    assert isinstance(error, ConnectionResetError)
    async with client(proxy) as stream:
        assert await round_trip(stream, b"z" * 1000) == b"z" * 1000


async def test_stop_leaves_no_open_sockets_or_tasks(echo: EchoServer) -> None:
    """After stop() (twice: it is idempotent) the task set and the open fds are as before."""
    tasks_before, fds_before = asyncio.all_tasks(), open_fds()
    proxy = FaultProxy("127.0.0.1", echo.port)
    await proxy.start()
    proxy.delay(0.05)
    async with client(proxy) as one, client(proxy) as two:
        await round_trip(one)
        two[1].write(b"in flight")
        await proxy.outage(10.0)
        async with client(proxy):
            await proxy.stop()
            await proxy.stop()
    await echo.idle()
    assert asyncio.all_tasks() == tasks_before
    assert open_fds() == fds_before


async def test_start_refuses_targets_and_listeners_off_loopback() -> None:
    """Only loopback literals and localhost are allowed, for the target and the listener."""
    with pytest.raises(ValueError, match="loopback"):
        await FaultProxy("10.1.2.3", 5432).start()
    with pytest.raises(ValueError, match="loopback"):
        await FaultProxy("example.com", 80).start()
    with pytest.raises(ValueError, match="loopback"):
        await FaultProxy("127.0.0.1", 5432).start(host="0.0.0.0")


async def test_asyncpg_runs_select_1_through_the_proxy(asyncpg: Any) -> None:
    """A real PostgreSQL session works end to end through the proxy."""
    async with FaultProxy("127.0.0.1", 5432) as proxy:
        connection = await asyncpg.connect(host="127.0.0.1", port=proxy.port, **PG_LOGIN)
        try:
            assert await connection.fetchval("SELECT 1") == 1
        finally:
            await connection.close()


async def test_asyncpg_fails_fast_during_an_outage_and_reconnects_after(asyncpg: Any) -> None:
    """During an outage a query fails within a second; afterwards a new connection succeeds."""
    errors = (ConnectionError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)
    async with FaultProxy("127.0.0.1", 5432) as proxy:
        old = await asyncpg.connect(host="127.0.0.1", port=proxy.port, **PG_LOGIN)
        await proxy.outage(0.5)
        start = time.perf_counter()
        with pytest.raises(errors):
            await old.fetchval("SELECT 1")
        with pytest.raises(errors):
            await asyncpg.connect(host="127.0.0.1", port=proxy.port, timeout=1.0, **PG_LOGIN)
        assert time.perf_counter() - start < 1.0
        old.terminate()
        await asyncio.sleep(0.6)
        new = await asyncpg.connect(host="127.0.0.1", port=proxy.port, **PG_LOGIN)
        try:
            assert await new.fetchval("SELECT 1") == 1
        finally:
            await new.close()
