"""A webhook receiver for tests: a Starlette app on loopback that records what it is sent,
checks each signature, and can answer with an error for a while or stop listening."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from callbridge.server.runner import running
from callbridge.webhooks import verify_signature


@dataclass(frozen=True)
class Received:
    event: dict[str, Any]
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered


class Receiver:
    """`fail_next` requests are answered 503; `received` keeps every request, failed or not."""

    def __init__(self, secret: str, clock: Callable[[], float] = time.time) -> None:
        self.secret = secret
        self.clock = clock  # "now" for signature checks: the workers' clock
        self.fail_next = 0
        self.received: list[Received] = []
        self.port = _free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def delivered(self) -> list[Received]:
        """The requests answered 2xx, in order."""
        return [r for r in self.received if r.status < 300]

    @contextlib.asynccontextmanager
    async def listening(self) -> AsyncIterator[None]:
        """Listen on the receiver's port (the same one every time) until the block exits."""
        app = Starlette(routes=[Route("/hooks", self._hook, methods=["POST"])])
        async with running(app, port=self.port):
            yield

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        signed = verify_signature(self.secret, request.headers.get("callbridge-signature", ""),
                                  body, now=self.clock())
        status = 401 if not signed else 503 if self.fail_next else 204
        self.fail_next -= status == 503
        self.received.append(Received(json.loads(body), dict(request.headers), body, status))
        return Response(status_code=status)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
