"""A fault-injection TCP proxy for tests: breaks real connections on command.

Owns one loopback listener, the proxied connections it accepts (each a client socket paired with
a fresh socket to the target) and the faults applied to the bytes between them: delay, stall,
corruption, cutting (reset or clean close), refusing new connections and timed outages. It moves
bytes only and parses no protocol, so it serves PostgreSQL, WebSocket and HTTP alike.

It must not touch any host but this one: it only ever listens on, and connects to, the loopback
addresses it is given (an IP loopback literal or `localhost`), and refuses to start otherwise.
It never logs per chunk.

    async with FaultProxy(target_host="127.0.0.1", target_port=5432) as proxy:
        ...connect the client under test to proxy.address...
        await proxy.outage(30)

"up" is client to target, "down" is target to client.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
from dataclasses import dataclass
from typing import Literal

from callbridge.testing.served import Served

__all__ = ["Direction", "FaultProxy"]

Direction = Literal["up", "down", "both"]

logger = logging.getLogger(__name__)

_CHUNK = 64 * 1024
_QUEUE_CHUNKS = 16  # per direction and connection: at most 1 MiB read ahead of the sink
_CLOSE_TIMEOUT = 1.0  # a clean close that has not finished by then becomes a reset
_INVERT = bytes(255 - value for value in range(256))
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST, not FIN


def require_loopback(host: str, who: str = "FaultProxy") -> None:
    """Raise ValueError unless `host` is `localhost` or a loopback IP literal (`who` names the
    test server that must stay on this host)."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"{host!r} is not a loopback address; {who} stays on this host")


def _sides(direction: Direction) -> tuple[str, ...]:
    """The one-way directions `direction` names."""
    if direction == "both":
        return ("up", "down")
    if direction in ("up", "down"):
        return (direction,)
    raise ValueError(f"direction must be 'up', 'down' or 'both', not {direction!r}")


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close `writer`'s socket with a TCP reset and drop whatever it still had to send."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    writer.transport.abort()


@dataclass(eq=False)
class _CutArm:
    """One armed `cut_after`; each pipe counts its bytes from the moment it first sees it."""

    n_bytes: int


class _Faults:
    """The fault settings every pipe reads, keyed by one-way direction."""

    def __init__(self) -> None:
        self.delay = {"up": 0.0, "down": 0.0}
        self.flowing = {"up": asyncio.Event(), "down": asyncio.Event()}
        self.corrupt_left = {"up": 0, "down": 0}
        self.cut_arm: dict[str, _CutArm | None] = {"up": None, "down": None}
        self.forwarded = {"up": 0, "down": 0}
        for event in self.flowing.values():
            event.set()


class _CutNow(Exception):
    """A pipe reached an armed `cut_after` count: the connection is to be reset."""


class _Pipe:
    """One direction of one connection: a reader task queues chunks, a writer task forwards them.

    Each chunk is stamped on arrival with its due time (arrival + delay) and forwarded no earlier,
    in order. The queue is bounded and the writer awaits `drain()`, so a slow sink slows the source.
    """

    def __init__(
        self,
        faults: _Faults,
        direction: str,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
    ) -> None:
        self._faults = faults
        self._direction = direction
        self._source = source
        self._sink = sink
        self._queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(_QUEUE_CHUNKS)
        self._arm: _CutArm | None = None
        self._counted = 0

    async def read_loop(self) -> None:
        """Read chunks while the direction flows, until EOF (queued as an empty chunk)."""
        loop = asyncio.get_running_loop()
        while True:
            await self._faults.flowing[self._direction].wait()
            data = await self._source.read(_CHUNK)
            await self._queue.put((loop.time() + self._faults.delay[self._direction], data))
            if not data:
                return

    async def write_loop(self) -> None:
        """Forward each chunk at its due time while the direction flows; pass EOF on."""
        loop = asyncio.get_running_loop()
        while True:
            due, data = await self._queue.get()
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            await self._faults.flowing[self._direction].wait()
            if not data:
                if self._sink.can_write_eof():
                    self._sink.write_eof()
                return
            await self._forward(data)

    async def _forward(self, data: bytes) -> None:
        data, cut = self._apply_faults(data)
        self._sink.write(data)
        self._faults.forwarded[self._direction] += len(data)
        if cut:  # flush every byte before the cut to the kernel, then reset
            self._sink.transport.set_write_buffer_limits(high=0)
            await self._sink.drain()
            raise _CutNow
        await self._sink.drain()

    def _apply_faults(self, data: bytes) -> tuple[bytes, bool]:
        """`data` truncated at an armed cut and with pending corruption applied; whether to cut."""
        faults, direction, cut = self._faults, self._direction, False
        arm = faults.cut_arm[direction]
        if arm is not None:
            if arm is not self._arm:
                self._arm, self._counted = arm, 0
            needed = arm.n_bytes - self._counted
            if len(data) >= needed:
                data, cut = data[:needed], True
                faults.cut_arm[direction] = None
            else:
                self._counted += len(data)
        flip = min(faults.corrupt_left[direction], len(data))
        if flip:
            data = data[:flip].translate(_INVERT) + data[flip:]
            faults.corrupt_left[direction] -= flip
        return data, cut


class _Connection:
    """A client socket, its socket to the target, and the two pipes between them.

    `run()` is its task. Once `closing` is set the task is finishing on its own: cancelling it
    then would cancel the transports' shared close waiters, so `FaultProxy.cut()` must not.
    """

    def __init__(
        self, faults: _Faults, client: tuple[asyncio.StreamReader, asyncio.StreamWriter]
    ) -> None:
        self._faults = faults
        self._client_reader, client_writer = client
        self._writers = [client_writer]
        self.closing = False

    async def run(self, target_host: str, target_port: int) -> None:
        """Connect to the target and pump both ways until both sides end; reset on any error."""
        try:
            target_reader, target_writer = await asyncio.open_connection(target_host, target_port)
        except OSError:
            self.closing = True
            self.reset()
            await self.close()
            return
        self._writers.append(target_writer)
        up = _Pipe(self._faults, "up", self._client_reader, target_writer)
        down = _Pipe(self._faults, "down", target_reader, self._writers[0])
        try:
            async with asyncio.TaskGroup() as group:
                for pipe in (up, down):
                    group.create_task(pipe.read_loop())
                    group.create_task(pipe.write_loop())
        except* (OSError, _CutNow):
            self.reset()
        self.closing = True
        await self.close()

    def reset(self) -> None:
        """Reset both sockets (RST, no FIN)."""
        for writer in self._writers:
            _reset(writer)

    async def close(self) -> None:
        """Close both sockets cleanly (FIN after buffered bytes); reset any that will not finish."""
        for writer in self._writers:
            writer.close()
        for writer in self._writers:
            try:
                async with asyncio.timeout(_CLOSE_TIMEOUT):
                    await writer.wait_closed()
            except TimeoutError:  # the timeout cancelled the close waiter: reset and let it go
                _reset(writer)
                await asyncio.sleep(0)  # connection_lost() runs in the callback abort() queued
            except OSError:
                pass  # the peer had reset it: closed all the same


class FaultProxy(Served):
    """A TCP proxy to one loopback target, with faults switched on and off by its methods.

    Faults take effect at once, on open connections and on new ones. Counters: `connections`
    (open now), `accepted` (every connection the listener took, refused ones included),
    `bytes_up` and `bytes_down` (forwarded so far).
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.accepted = 0
        self._faults = _Faults()
        self._refusing = False
        self._server: asyncio.Server | None = None
        self._stopped = False
        self._connections: dict[asyncio.Task[None], _Connection] = {}
        self._outage: asyncio.Task[None] | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on `host:port` (port 0 picks a free one). Both hosts must be loopback."""
        if self._server is not None or self._stopped:
            raise RuntimeError("a FaultProxy starts once")
        require_loopback(self.target_host)
        require_loopback(host)
        self._server = await asyncio.start_server(self._accept, host, port)

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) clients connect to."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the proxy is not listening")
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    @property
    def port(self) -> int:
        """The port clients connect to."""
        return self.address[1]

    @property
    def connections(self) -> int:
        """Proxied connections open now (including ones still connecting to the target)."""
        return len(self._connections)

    @property
    def bytes_up(self) -> int:
        """Bytes forwarded from clients to the target so far."""
        return self._faults.forwarded["up"]

    @property
    def bytes_down(self) -> int:
        """Bytes forwarded from the target to clients so far."""
        return self._faults.forwarded["down"]

    @property
    def down(self) -> bool:
        """Whether new connections are being refused (by `refuse(True)` or an `outage()`)."""
        return self._refusing

    def delay(self, seconds: float, direction: Direction = "both") -> None:
        """Forward each chunk read from now on `seconds` after it arrived; 0 removes the delay."""
        if seconds < 0:
            raise ValueError("delay must be >= 0 seconds")
        for side in _sides(direction):
            self._faults.delay[side] = seconds

    def stall(self, direction: Direction = "both") -> None:
        """Stop reading and forwarding in `direction`; bytes wait in buffers until `resume()`."""
        for side in _sides(direction):
            self._faults.flowing[side].clear()

    def resume(self, direction: Direction = "both") -> None:
        """Undo `stall()`: everything held is forwarded, in order."""
        for side in _sides(direction):
            self._faults.flowing[side].set()

    def corrupt_next(self, n_bytes: int = 1, direction: Direction = "down") -> None:
        """Invert every bit of the next `n_bytes` forwarded in `direction` (once; replaces any
        corruption still pending there)."""
        if n_bytes < 0:
            raise ValueError("n_bytes must be >= 0")
        for side in _sides(direction):
            self._faults.corrupt_left[side] = n_bytes

    def cut_after(self, n_bytes: int, direction: Literal["up", "down"] = "down") -> None:
        """Reset the first connection to forward `n_bytes` more bytes in `direction`, right after
        those bytes (once). With 0, the next connection to forward anything there is reset."""
        if n_bytes < 0:
            raise ValueError("n_bytes must be >= 0")
        if direction not in ("up", "down"):
            raise ValueError(f"cut_after needs 'up' or 'down', not {direction!r}")
        self._faults.cut_arm[direction] = _CutArm(n_bytes)

    async def cut(self, abort: bool = True) -> None:
        """Close every open connection, both sides: a reset (RST) if `abort`, else a clean FIN."""
        tasks = list(self._connections)
        logger.debug("cutting %d connections (abort=%s)", len(tasks), abort)
        for task, connection in self._connections.items():
            if connection.closing:
                if abort:
                    connection.reset()
            else:
                task.cancel()
        if not tasks:
            return
        await asyncio.wait(tasks)
        for task in tasks:
            cancelled = self._connections.pop(task, None)
            if cancelled is not None:  # else it ended on its own, or another cut() has it
                if abort:
                    cancelled.reset()
                await cancelled.close()

    def refuse(self, on: bool = True) -> None:
        """While on, accept new connections and reset them at once; open ones are untouched.
        Either way it ends any `outage()` in progress."""
        self._end_outage_timer()
        self._refusing = on

    async def outage(self, seconds: float) -> None:
        """Make the target look down for `seconds`: refuse new connections and reset open ones,
        then accept again. Returns once the cut is done; the recovery runs in the background."""
        if seconds < 0:
            raise ValueError("an outage lasts >= 0 seconds")
        if self._stopped:
            raise RuntimeError("the proxy is stopped")
        self.refuse(True)
        await self.cut(abort=True)
        self._outage = asyncio.get_running_loop().create_task(self._recover_after(seconds))

    async def stop(self) -> None:
        """Stop listening and reset every connection. Idempotent."""
        self._stopped = True
        outage = self._end_outage_timer()
        if outage is not None:
            await asyncio.wait([outage])
        server, self._server = self._server, None
        if server is not None:
            server.close()
        await self.cut(abort=True)
        if server is not None:
            await server.wait_closed()
        await asyncio.sleep(0)  # let refused sockets' connection_lost callbacks run

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self._refusing or self._stopped:
            _reset(writer)
            return
        connection = _Connection(self._faults, (reader, writer))
        task = asyncio.get_running_loop().create_task(
            connection.run(self.target_host, self.target_port)
        )
        self._connections[task] = connection
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return  # cut() cancelled it, and closes and forgets it
        connection = self._connections.pop(task, None)
        if (error := task.exception()) is not None and connection is not None:
            logger.error("proxied connection failed", exc_info=error)  # a bug in this module
            connection.reset()

    async def _recover_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._refusing = False
        self._outage = None

    def _end_outage_timer(self) -> asyncio.Task[None] | None:
        outage, self._outage = self._outage, None
        if outage is not None:
            outage.cancel()
        return outage
