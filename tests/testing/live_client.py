"""A bare GPT-Live client for the fake server's tests: a plain `websockets` socket, every event
received kept and checked against the SDK's types, and a microphone that streams μ-law frames."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from callbridge.testing.fake_live import FakeLiveServer
from callbridge.testing.live_validation import validate_live_server_event

AUTH = {"Authorization": "Bearer sk-test"}
MODEL = "gpt-live-1.1"
PCMU = {"type": "audio/pcmu", "rate": 8000}
FRAME = 160  # 20 ms of μ-law

Event = dict[str, Any]


def start_event(**session: Any) -> Event:
    body: Event = {"model": MODEL, "audio": {"format": PCMU, "output": {"voice": "marin"}}}
    body.update(session)
    return {"type": "session.start", "event_id": "evt_start", "session": body}


def responses_delegation(**responses: Any) -> Event:
    return {"type": "responses", "responses": {"model": "gpt-5.6-terra", **responses}}


class LiveClient:
    """Events out as JSON; every event in is validated and kept in `received`."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.received: list[Event] = []
        self.problems: list[str] = []
        self._arrived = asyncio.Event()
        self._outbox = bytearray()
        self._reader = asyncio.create_task(self._read())
        self._mic: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in self.ws:
                event: Event = json.loads(message)
                try:
                    validate_live_server_event(event)
                except ValueError as exc:
                    self.problems.append(str(exc))
                self.received.append(event)
                self._arrived.set()
        self._arrived.set()

    async def send(self, event: Event) -> None:
        await self.ws.send(json.dumps(event))

    async def start(self, **session: Any) -> Event:
        await self.send(start_event(**session))
        return await self.next("session.started")

    def of(self, event_type: str) -> list[Event]:
        return [event for event in self.received if event["type"] == event_type]

    async def next(self, event_type: str, count: int = 1, timeout: float = 5.0) -> Event:  # noqa: ASYNC109
        """Wait until `count` events of `event_type` arrived; return the count-th."""
        async with asyncio.timeout(timeout):
            while len(self.of(event_type)) < count:
                if self._reader.done():
                    raise ConnectionError(f"closed before {count} × {event_type}")
                self._arrived.clear()
                await self._arrived.wait()
        return self.of(event_type)[count - 1]

    async def closed(self, timeout: float = 5.0) -> int | None:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            await self._reader
        return self.ws.close_code

    # ---- the microphone -----------------------------------------------------------------------

    def microphone(self, speed: float) -> None:
        """Stream 20 ms frames at `speed`× real time: queued speech (`say`), else silence."""
        self._mic = asyncio.create_task(self._stream(speed))

    def say(self, ulaw: bytes) -> None:
        self._outbox += ulaw

    async def mute_microphone(self) -> None:
        """Stop sending frames (the input gap a bridge must fill with silence)."""
        if self._mic is not None:
            self._mic.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._mic
            self._mic = None

    async def _stream(self, speed: float) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        with contextlib.suppress(ConnectionClosed):
            while True:
                frame = bytes(self._outbox[:FRAME]).ljust(FRAME, b"\xff")
                del self._outbox[:FRAME]
                await self.send({"type": "session.input_audio.append",
                                 "audio": base64.b64encode(frame).decode()})
                next_at += 0.02 / speed
                await asyncio.sleep(max(0.0, next_at - loop.time()))

    async def aclose(self) -> None:
        await self.mute_microphone()
        await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@asynccontextmanager
async def live_session(server: FakeLiveServer, **session: Any) -> AsyncIterator[LiveClient]:
    """A started session (pass `start=False`-like behaviour by using `connected` instead)."""
    async with connected(server) as client:
        await client.start(**session)
        yield client


@asynccontextmanager
async def connected(server: FakeLiveServer) -> AsyncIterator[LiveClient]:
    ws = await connect(server.url, additional_headers=AUTH)
    client = LiveClient(ws)
    try:
        yield client
    finally:
        await client.aclose()


def audio_of(events: list[Event]) -> bytes:
    return b"".join(
        base64.b64decode(e["delta"]) for e in events if e["type"] == "session.output_audio.delta"
    )
