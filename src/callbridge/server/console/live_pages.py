"""The live view: live calls, one call's transcript as it grows (Server-Sent Events), and the
buttons that hang it up, transfer it or make the agent say something.

Everything about the calls themselves goes through `LiveCalls` (console/live.py), so these pages
do not change when live calls come from the cluster instead of this instance.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from callbridge.server.console.live import CommandRefused
from callbridge.server.console.web import (
    Console,
    Handler,
    Visit,
    back_to,
    render,
    secured,
    session_of,
)

POLL_S = 0.25
KEEPALIVE_S = 15.0


async def live_list(console: Console, visit: Visit) -> Response:
    return render(visit, "live.html", calls=console.live.calls())


async def live_call(console: Console, visit: Visit) -> Response:
    call_sid = visit.request.path_params["call_sid"]
    call = console.live.get(call_sid)
    if call is None:
        return render(visit, "message.html", 404, title="Not live",
                      message=f"{call_sid} is not a live call on this instance any more.")
    return render(visit, "live_call.html", call=call)


def events(console: Console) -> Handler:
    async def handle(request: Request) -> Response:
        """`text/event-stream` of the call's turns: `turn` events, then one `ended`."""
        if session_of(console, request) is None:
            return secured(PlainTextResponse("sign in first\n", status_code=401))
        call_sid = request.path_params["call_sid"]
        if console.live.get(call_sid) is None:
            return secured(PlainTextResponse("not a live call\n", status_code=404))
        stream = StreamingResponse(_turns(console, request, call_sid),
                                   media_type="text/event-stream")
        stream.headers["X-Accel-Buffering"] = "no"
        return secured(stream)
    return handle


async def _turns(console: Console, request: Request, call_sid: str) -> AsyncIterator[str]:
    sent, idle = 0, 0.0
    yield "retry: 2000\n\n"
    while True:
        turns = console.live.turns(call_sid, sent)
        if turns is None:
            yield "event: ended\ndata: {}\n\n"
            return
        for turn in turns:
            data = json.dumps({"role": turn.role, "text": turn.text,
                               "interrupted": turn.interrupted})
            yield f"event: turn\ndata: {data}\n\n"
        sent += len(turns)
        if turns:
            idle = 0.0
        elif idle >= KEEPALIVE_S:
            idle = 0.0
            yield ": keepalive\n\n"
        if await request.is_disconnected():
            return
        await asyncio.sleep(POLL_S)
        idle += POLL_S


async def _command(console: Console, visit: Visit) -> str:
    form = await visit.request.form()
    call_sid = visit.request.path_params["call_sid"]
    command = visit.request.path_params["command"]
    if command == "hangup":
        await console.live.hang_up(call_sid, goodbye=form.get("goodbye") == "yes")
        return "Hanging up."
    if command == "transfer":
        target = form.get("to")
        await console.live.transfer(call_sid, target if isinstance(target, str) else "")
        return "Transferring."
    if command == "say":
        text = form.get("text")
        await console.live.say(call_sid, text if isinstance(text, str) else "")
        return "The agent will say it next."
    raise CommandRefused(f"there is no command {command!r}")


async def command(console: Console, visit: Visit) -> Response:
    """Carry out a live-call command; back to the live page (the call's record after a
    hang-up) with what happened."""
    call_sid = quote(visit.request.path_params["call_sid"], safe="")
    path = f"/console/live/{call_sid}"
    try:
        note = await _command(console, visit)
    except CommandRefused as exc:
        return back_to(path, error=str(exc))
    if visit.request.path_params["command"] == "hangup":
        path = f"/console/calls/{call_sid}"
    return back_to(path, note=note)
