"""What the two fake model servers (Realtime, GPT-Live) share: listening on a loopback WebSocket
at their API's path, refusing opening handshakes on demand or when they are malformed, the
record of what clients did, and the controls that act on every open connection (dropping them,
waiting for an event).

Each server says what differs: its path, what its handshake requires (`_handshake_problem`), the
validation schemas to load before the first event (`_preload`) and how an accepted socket is
served (`_handle`). Like the servers, it imports nothing from `callbridge.core` or
`callbridge.server`.
"""

from __future__ import annotations

import asyncio
import json
from abc import abstractmethod
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from callbridge.testing.fake_realtime_config import Recorder
from callbridge.testing.served import Served

_MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # the APIs accept appends up to 15 MiB


class Connection(Protocol):
    """One accepted client socket, as the shared controls see it."""

    client_events: list[dict[str, Any]]

    def abort(self) -> None: ...


C = TypeVar("C", bound=Connection)


def client_event(message: str | bytes) -> dict[str, Any] | tuple[str, str]:
    """A client frame as its event, or the (code, message) both APIs refuse it with: a binary
    frame, text that is not JSON, JSON that is not an object."""
    if isinstance(message, bytes):
        return "invalid_value", "Binary frames are not supported; send JSON text."
    try:
        event = json.loads(message)
    except ValueError as exc:
        return "invalid_json", f"Invalid JSON: {exc}"
    if not isinstance(event, dict):
        return "invalid_value", "Expected a JSON object with a `type`."
    return event


def bearer_problem(request: Request) -> tuple[HTTPStatus, str] | None:
    """A refusal when the handshake carries no `Authorization: Bearer <key>` (both APIs ask)."""
    authorization = request.headers.get("Authorization", "")
    if not authorization.startswith("Bearer ") or not authorization[7:].strip():
        return HTTPStatus.UNAUTHORIZED, "missing or malformed 'Authorization: Bearer <key>' header"
    return None


class FakeModelServer(Served, Generic[C]):
    """The listening half of a fake model server; subclasses serve the sockets it accepts."""

    path: ClassVar[str]  # the API's WebSocket path
    name: ClassVar[str]  # the module named in a refusal (`fake_realtime.reject_next`)

    def __init__(self, recorder: Recorder) -> None:
        self.handshake_attempts = 0
        self._open: list[C] = []  # every accepted connection, in order (subclasses name it)
        self._recorder = recorder
        self._server: Server | None = None
        self._url: str | None = None
        self._reject_remaining = 0
        self._reject_status = 503

    # ---- life cycle -------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on `host:port` (0: any free port); `url` is valid afterwards."""
        if self._server is not None:
            raise RuntimeError("the fake server is already started")
        await asyncio.to_thread(self._preload)  # keep the first validation off the event loop
        self._server = await serve(self._handle, host, port,
                                   process_request=self._check_handshake,
                                   max_size=_MAX_MESSAGE_BYTES, compression=None)
        bound = next(iter(self._server.sockets)).getsockname()
        self._url = f"ws://{bound[0]}:{bound[1]}{self.path}"

    async def stop(self) -> None:
        """Close every connection (1001) and stop listening. Safe to call twice."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def url(self) -> str:
        """`ws://127.0.0.1:PORT` and the API's path."""
        if self._url is None:
            raise RuntimeError("the fake server is not started")
        return self._url

    # ---- what happened ----------------------------------------------------------------------

    @property
    def violations(self) -> list[str]:
        """Every protocol violation by any client, in order."""
        return self._recorder.violations

    @property
    def client_events(self) -> list[dict[str, Any]]:
        """Every event any client sent, connection by connection."""
        return [event for connection in self._open for event in connection.client_events]

    # ---- controls ---------------------------------------------------------------------------

    def reject_next(self, n: int, status: int = 503) -> None:
        """Refuse the next `n` opening handshakes with HTTP `status`."""
        self._reject_remaining, self._reject_status = n, status

    def drop_when(self, event_type: str, nth: int = 1) -> None:
        """Abort the TCP connection (no close frame) just before the server would send the nth
        event of `event_type` from now on, counted across connections. One-shot."""
        self._recorder.arm_drop(event_type, nth)

    async def drop_all(self) -> None:
        """Abort every open connection now, without a close frame (clients see 1006)."""
        for connection in self._open:
            connection.abort()
        await asyncio.sleep(0)

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the published test API
    ) -> None:
        """Wait until `predicate()` is true; raise `TimeoutError` after `timeout` seconds."""
        async with asyncio.timeout(timeout):
            while not predicate():  # noqa: ASYNC110 - an arbitrary predicate can only be polled
                await asyncio.sleep(0.005)

    async def wait_for_event(
        self,
        client_event_type: str,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the published test API
    ) -> dict[str, Any]:
        """Wait until clients sent `count` events of a type (all connections); return the last."""

        def matching() -> list[dict[str, Any]]:
            return [e for e in self.client_events if e.get("type") == client_event_type]

        await self.wait_for(lambda: len(matching()) >= count, timeout)
        return matching()[count - 1]

    # ---- what each server says --------------------------------------------------------------

    @staticmethod
    @abstractmethod
    def _preload() -> None:
        """Load what validating the first client event needs."""

    @staticmethod
    @abstractmethod
    def _handshake_problem(request: Request) -> tuple[HTTPStatus, str] | None:
        """Why the opening handshake is refused (a client's violation), or None."""

    @abstractmethod
    async def _handle(self, ws: ServerConnection) -> None:
        """Serve one accepted socket until it closes (append its connection to `_open`)."""

    # ---- websockets callbacks ---------------------------------------------------------------

    def _check_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        self.handshake_attempts += 1
        if self._reject_remaining > 0:
            self._reject_remaining -= 1
            status = HTTPStatus(self._reject_status)
            return connection.respond(status, f"{status.phrase} ({self.name}.reject_next)\n")
        refusal = self._handshake_problem(request)
        if refusal is None:
            return None
        status, message = refusal
        self._recorder.violation("handshake", message)
        return connection.respond(status, message + "\n")
