"""The live-call API: see and act on calls in progress, from any instance.

Routes (bearer token as the rest of `/api/`; they work without a call record too):

- `GET /api/calls/live` → `{"instance": ..., "calls": [{"call_sid", "instance", "direction",
  "from", "to", "agent", "state"}]}`: the live calls of every instance sharing the database.
- `POST /api/calls/{CallSid}/hangup`, optional JSON `{"goodbye": "..."}`: the agent says it,
  then hangs up; without it at once.
- `POST /api/calls/{CallSid}/transfer`, `{"to": "+1555..." | "sip:...", "announcement": "..."}`.
- `POST /api/calls/{CallSid}/say`, `{"text": "..."}`: said at the next turn boundary.
- `POST /api/calls/{CallSid}/context`, `{"text": "..."}`: a note the model sees, not spoken.
- `GET /api/calls/{CallSid}/stream`: Server-Sent Events, one `event:` per type —
  `transcript.delta`, `turn`, `tool_call`, `event`, and `end` last; a comment every 15 s.

Actions answer 202 `{"status": "accepted"}` when the call took the request, 404 for an unknown
or ended call, 409 when the call cannot take it now (not streaming yet, already closing, waiting
for the answering-machine verdict), 400 with the reason for bad input, 503 when the instance
carrying the call did not answer. `routes()` gives the Starlette routes, for `create_app` and
for anyone embedding them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from callbridge.server.api import _refusal

if TYPE_CHECKING:
    from callbridge.server.app import CallbridgeServer

Handler = Callable[[Request], Awaitable[Response]]
KEEPALIVE_S = 15.0
OPERATIONS = ("hangup", "transfer", "say", "context")


def routes(server: CallbridgeServer) -> list[Route]:
    """The live-call routes; they must come before `/api/calls/{call_sid}`."""
    return [
        Route("/api/calls/live", list_live(server), methods=["GET"]),
        *(Route(f"/api/calls/{{call_sid}}/{op}", act(server, op), methods=["POST"])
          for op in OPERATIONS),
        Route("/api/calls/{call_sid}/stream", stream(server), methods=["GET"]),
    ]


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


def list_live(server: CallbridgeServer) -> Handler:
    async def handle(request: Request) -> Response:
        """The live calls of every instance, each with the instance carrying it."""
        refusal = _refusal(server, request, needs_store=False)
        if refusal is not None:
            return refusal
        calls = await server.live.live()
        return JSONResponse({"instance": server.settings.instance_id, "calls": calls})
    return handle


def act(server: CallbridgeServer, op: str) -> Handler:
    async def handle(request: Request) -> Response:
        """One action on a live call (see the module docstring)."""
        refusal = _refusal(server, request, needs_store=False)
        if refusal is not None:
            return refusal
        body = await request.body()
        args: Any = {}
        if body.strip():
            try:
                args = json.loads(body)
            except ValueError:
                return _error(400, "the body must be JSON")
        if not isinstance(args, dict):
            return _error(400, "the body must be a JSON object")
        reply = await server.live.act(request.path_params["call_sid"], op, args)
        if reply.status == 202:
            return JSONResponse({"status": "accepted"}, status_code=202)
        return _error(reply.status, reply.reason)
    return handle


def stream(server: CallbridgeServer) -> Handler:
    async def handle(request: Request) -> Response:
        """The call's live events as Server-Sent Events, until the call ends."""
        refusal = _refusal(server, request, needs_store=False)
        if refusal is not None:
            return refusal
        stack = contextlib.AsyncExitStack()
        queue = await stack.enter_async_context(
            server.live.follow(request.path_params["call_sid"]))
        if queue is None:
            await stack.aclose()
            return _error(404, "no such live call")

        async def events() -> AsyncIterator[str]:
            try:
                yield ": following the call\n\n"
                while True:
                    try:
                        event = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                    except TimeoutError:
                        yield ": keepalive\n\n"
                        continue
                    yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"
                    if event["type"] == "end":
                        return
            finally:
                await stack.aclose()

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache",
                                          "X-Accel-Buffering": "no"})
    return handle
