"""One response of the fake GPT-Live session's Responses backend, as the client sees it.

Owns the stream of Responses events GPT-Live wraps in `response.event` (with the delegation's id):
`response.created`, `response.output_item.done` per item, then `response.completed` (usage) or
`response.failed`, each with its `sequence_number`; lifecycle snapshots carry no output, tools or
instructions, as the real service trims them. While it runs, its id is in the session's
`Delegations.running` (a `response.create` then is refused).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from callbridge.testing import fake_live_wire as wire
from callbridge.testing.fake_live_delegation import Delegations
from callbridge.testing.fake_live_wire import JsonDict


class BackendResponse:
    """Streams one backend response through `emit` (the session's)."""

    def __init__(self, emit: Callable[[JsonDict], Awaitable[None]], delegations: Delegations,
                 delegation_id: str, response_id: str, *, model: str) -> None:
        self.id = response_id
        self._emit, self._delegation_id, self._model = emit, delegation_id, model
        self._running = delegations.running
        self._sequence = 0
        self._output_index = 0
        self._created_at = int(time.time())

    async def start(self) -> None:
        self._running.add(self.id)
        await self._send({"type": "response.created", "response": self._snapshot("in_progress")})

    async def item(self, item: JsonDict) -> None:
        await self._send({"type": "response.output_item.done", "output_index": self._output_index,
                          "item": item})
        self._output_index += 1

    async def complete(self) -> None:
        usage = wire.backend_usage(input_tokens=400, output_tokens=20 * self._output_index,
                                   reasoning_tokens=16)
        self._running.discard(self.id)  # before the event: a client may continue at once
        await self._send({"type": "response.completed",
                          "response": self._snapshot("completed", usage=usage)})

    async def fail(self) -> None:
        error = {"code": "server_error", "message": "The backend response failed."}
        self._running.discard(self.id)
        await self._send({"type": "response.failed",
                          "response": self._snapshot("failed", error=error)})

    async def _send(self, event: JsonDict) -> None:
        inner = {**event, "sequence_number": self._sequence}
        self._sequence += 1
        await self._emit({"type": "response.event", "delegation_id": self._delegation_id,
                          "event": inner})

    def _snapshot(self, status: str, **fields: Any) -> JsonDict:
        return wire.backend_response(self.id, model=self._model, status=status,
                                     created_at=self._created_at, **fields)
