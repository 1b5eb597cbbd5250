"""A round-robin TCP balancer for tests: each new connection goes to the next target.

Owns one loopback listener and the connections it pairs with the targets, in turn, with no
stickiness of any kind — a call's webhook, media socket and callbacks land on different
instances when each is a new connection, as behind a plain layer-4 load balancer. Use it to test
that your own deployment of several `callbridge serve` processes behaves as one. It moves bytes
only (HTTP, WebSocket, anything), listens on and connects to loopback addresses only, and logs
nothing per chunk. HTTP clients that keep connections alive send every request of a connection
to one target, as a real balancer would.

    async with RoundRobinProxy([("127.0.0.1", 8081), ("127.0.0.1", 8082)]) as proxy:
        ...point the client at proxy.url...
        proxy.accepted  # connections per target so far
"""

from __future__ import annotations

import asyncio
import contextlib

from callbridge.testing.fault_proxy import require_loopback
from callbridge.testing.served import Served

__all__ = ["RoundRobinProxy"]

_CHUNK = 64 * 1024


class RoundRobinProxy(Served):
    """Connection `n` goes to `targets[n % len(targets)]`; a target that refuses is skipped
    (the next one is tried, like a balancer's health check would)."""

    def __init__(self, targets: list[tuple[str, int]]) -> None:
        if not targets:
            raise ValueError("RoundRobinProxy needs at least one target")
        for host, _port in targets:
            require_loopback(host, "RoundRobinProxy")
        self.targets = list(targets)
        self.accepted = [0] * len(targets)  # connections each target took
        self._next = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.host = "127.0.0.1"
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def skip(self, n: int = 1) -> None:
        """Move the rotation on by `n` targets without a connection (to line a test up)."""
        self._next += n

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        require_loopback(host, "RoundRobinProxy")
        self._server = await asyncio.start_server(self._accept, host, port)
        self.host, self.port = host, self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()  # each pipe then sees its connection lost and ends
        if self._tasks:
            _done, pending = await asyncio.wait(list(self._tasks), timeout=2.0)
            for task in pending:
                task.cancel()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            upstream = await self._connect()
            if upstream is None:
                return
            target_reader, target_writer = upstream
            self._writers.add(target_writer)
            try:
                await asyncio.gather(self._pipe(reader, target_writer),
                                     self._pipe(target_reader, writer))
            finally:
                self._writers.discard(target_writer)
                target_writer.transport.abort()
        finally:
            self._writers.discard(writer)
            writer.transport.abort()
            self._tasks.discard(task)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        for _ in range(len(self.targets)):
            index = self._next % len(self.targets)
            self._next += 1
            host, port = self.targets[index]
            try:
                connection = await asyncio.open_connection(host, port)
            except OSError:
                continue
            self.accepted[index] += 1
            return connection
        return None

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                data = await reader.read(_CHUNK)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
