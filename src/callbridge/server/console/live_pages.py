"""The live view: live calls, one call's transcript as it grows (Server-Sent Events), and the
buttons that hang it up, transfer it or make the agent say something.

Everything about the calls themselves goes through `LiveCalls` (console/live.py), which reaches
the calls of every instance through the live-call API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from callbridge.server.console.live import CommandRefused, Following, LiveTurn
from callbridge.server.console.web import (
    Console,
    Handler,
    Visit,
    back_to,
    render,
    secured,
    session_of,
)

KEEPALIVE_S = 15.0


async def live_list(console: Console, visit: Visit) -> Response:
    return render(visit, "live.html", calls=await console.live.calls())


async def live_call(console: Console, visit: Visit) -> Response:
    call_sid = visit.request.path_params["call_sid"]
    call = await console.live.get(call_sid)
    if call is None:
        return render(visit, "message.html", 404, title="Not live",
                      message=f"{call_sid} is not a live call any more.")
    return render(visit, "live_call.html", call=call)


def events(console: Console) -> Handler:
    async def handle(request: Request) -> Response:
        """`text/event-stream` of the call's turns (those so far first): `turn` events, then
        one `ended`."""
        if session_of(console, request) is None:
            return secured(PlainTextResponse("sign in first\n", status_code=401))
        stack = contextlib.AsyncExitStack()
        following = await stack.enter_async_context(
            console.live.follow(request.path_params["call_sid"]))
        if following is None:
            await stack.aclose()
            return secured(PlainTextResponse("not a live call\n", status_code=404))
        stream = StreamingResponse(_turns(following, stack), media_type="text/event-stream")
        stream.headers["X-Accel-Buffering"] = "no"
        stream.headers["Cache-Control"] = "no-cache"
        return secured(stream)
    return handle


def _turn_event(turn: LiveTurn) -> str:
    data = json.dumps({"role": turn.role, "text": turn.text, "interrupted": turn.interrupted})
    return f"event: turn\ndata: {data}\n\n"


async def _turns(following: Following, stack: contextlib.AsyncExitStack) -> AsyncIterator[str]:
    try:
        yield "retry: 2000\n\n"
        for turn in await following.so_far():
            yield _turn_event(turn)
        while True:
            try:
                turns = await asyncio.wait_for(following.next(), KEEPALIVE_S)
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            if turns is None:
                yield "event: ended\ndata: {}\n\n"
                return
            for turn in turns:
                yield _turn_event(turn)
    finally:
        await stack.aclose()


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
