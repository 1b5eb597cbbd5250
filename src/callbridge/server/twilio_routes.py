"""The routes Twilio calls: the voice webhook, the status callback and the media socket.

Owns the edge: signature checks against the configured public URL (refusal before any work; an
unsigned upgrade is refused before `accept()`, i.e. HTTP 403), minting and redeeming one-time
stream tokens, and handing an admitted media socket to its call's bridge. With several instances
(`server.cluster`) the webhooks share the call's facts, the media socket redeems its token once
for all instances and takes the call (the webhook's instance then releases its pre-opened
upstream), and `completed` or an AMD verdict for a call carried elsewhere is routed there.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from callbridge.core import twilio_messages as tw
from callbridge.core.tokens import Grant
from callbridge.core.twiml import connect_stream, say_and_hang_up
from callbridge.errors import ConfigError, TwilioProtocolError
from callbridge.logs import get_logger
from callbridge.redact import mask_number
from callbridge.server.bridge import Bridge, CallInfo
from callbridge.store.records import RecordingStored, StatusChanged
from callbridge.store.repository import TERMINAL
from callbridge.store.routes import CallFacts, Route

if TYPE_CHECKING:
    from callbridge.server.app import CallbridgeServer

log = get_logger("callbridge.server")

START_TIMEOUT_S = 10.0
MAX_FRAMES_BEFORE_START = 8

Handler = Callable[[Request], Awaitable[Response]]


SignedHandler = Callable[[Request, dict[str, str]], Awaitable[Response]]


def _signed(server: CallbridgeServer, handler: SignedHandler) -> Handler:
    """`handler` runs only for a request Twilio signed; it gets the form fields."""
    async def handle(request: Request) -> Response:
        params = await _signed_form(server, request)
        if params is None:
            return PlainTextResponse("invalid Twilio signature\n", status_code=403)
        return await handler(request, params)
    handle.__doc__ = handler.__doc__
    return handle


async def _signed_form(server: CallbridgeServer, request: Request) -> dict[str, str] | None:
    """The webhook's form fields, or None when the signature does not match."""
    form = await request.form()
    signature = request.headers.get("x-twilio-signature")
    if not server.signatures.webhook_ok(request.url.path, request.url.query, form, signature):
        log.warning("webhook refused: bad or missing X-Twilio-Signature", path=request.url.path)
        return None
    return {key: str(value) for key, value in form.multi_items()}


def voice(server: CallbridgeServer) -> Handler:
    async def handle(request: Request, params: dict[str, str]) -> Response:
        """Incoming call: answer `<Connect><Stream>` and start opening the upstream."""
        call_sid = params.get("CallSid", "")
        if not call_sid:
            return PlainTextResponse("CallSid is missing\n", status_code=400)
        caller, called = params.get("From", ""), params.get("To", "")
        if server.calls.get(call_sid) is None:
            refused = _refused(server, call_sid)
            if refused is not None:
                return refused
            log.info("incoming call", call_sid=call_sid, caller=mask_number(caller),
                     called=mask_number(called))
        info = CallInfo(params.get("Direction", "inbound"), caller, called)
        profile = server.settings.directory.for_number(called)
        server.calls.open(call_sid, info, profile=profile)
        _remembered(server, call_sid, await server.cluster.remember(
            call_sid, CallFacts(info.direction, caller, called, profile.name)))
        return _connect(server, call_sid, caller, called)
    return _signed(server, handle)


def _remembered(server: CallbridgeServer, call_sid: str, route: Route | None) -> None:
    """A repeated webhook after another instance took the stream: the upstream just pre-opened
    here is not needed (and must not record an end for a call that goes on there)."""
    if route is not None and route.owner not in (None, server.settings.instance_id):
        log.info("repeated webhook for a call carried elsewhere", call_sid=call_sid,
                 owner=route.owner)
        server.calls.hand_over(call_sid)


def _refused(server: CallbridgeServer, call_sid: str) -> Response | None:
    """The overflow TwiML when this instance does not take the call now."""
    reason = server.admission.refusal(len(server.calls), server.now())
    if reason is None:
        return None
    log.warning("call refused", call_sid=call_sid, reason=reason)
    server.metrics.calls_refused.labels(reason).inc()
    return Response(server.admission.overflow_twiml(), media_type="text/xml")


def _connect(server: CallbridgeServer, call_sid: str, caller: str, called: str) -> Response:
    """`<Connect><Stream>` TwiML with a fresh one-time token for this call."""
    token = server.tokens.issue(call_sid, caller, called, time.time(), secrets.token_urlsafe(12))
    twiml = connect_stream(server.settings.stream_url,
                           {"token": token, "from": caller, "to": called},
                           apology=server.settings.apology)
    return Response(twiml, media_type="text/xml")


def outbound_answer(server: CallbridgeServer) -> Handler:
    async def handle(request: Request, params: dict[str, str]) -> Response:
        """The callee of an outbound call answered: connect the stream with the call's agent."""
        call_sid = params.get("CallSid", "")
        if not call_sid:
            return PlainTextResponse("CallSid is missing\n", status_code=400)
        try:
            profile = server.settings.directory.named(request.query_params.get("agent"))
        except ConfigError as exc:
            log.error("outbound call for an unknown agent", call_sid=call_sid, error=str(exc))
            return Response(say_and_hang_up(server.settings.apology), media_type="text/xml")
        if server.calls.get(call_sid) is None:
            refused = _refused(server, call_sid)
            if refused is not None:
                return refused
        ours, theirs = params.get("From", ""), params.get("To", "")
        info = CallInfo(params.get("Direction", "outbound-api"), ours, theirs)
        awaiting_answer = request.query_params.get("amd") == "1"
        server.calls.open(call_sid, info, profile=profile, awaiting_answer=awaiting_answer)
        _remembered(server, call_sid, await server.cluster.remember(
            call_sid, CallFacts(info.direction, ours, theirs, profile.name, awaiting_answer)))
        return _connect(server, call_sid, ours, theirs)
    return _signed(server, handle)


def amd(server: CallbridgeServer) -> Handler:
    async def handle(request: Request, params: dict[str, str]) -> Response:
        """Async answering-machine detection: a person or a machine answered. The verdict is
        shared, so the instance that takes the media stream later sees it; an instance that
        carries the call already gets it routed."""
        call_sid, kind = params.get("CallSid", ""), params.get("AnsweredBy", "unknown")
        if not call_sid:
            return PlainTextResponse("CallSid is missing\n", status_code=400)
        route = await server.cluster.verdict(call_sid, kind)
        owner = None if route is None else route.owner
        bridge = server.calls.get(call_sid)
        if owner not in (None, server.settings.instance_id):
            assert owner is not None
            await server.cluster.send(owner, {"op": "amd", "call_sid": call_sid,
                                              "answered_by": kind})
        elif bridge is not None:
            bridge.answered_by(kind)
        return Response(status_code=204)
    return _signed(server, handle)


def recording(server: CallbridgeServer) -> Handler:
    async def handle(request: Request, params: dict[str, str]) -> Response:
        """A recording finished (or failed): keep its reference with the call."""
        duration = params.get("RecordingDuration", "")
        server.calls.sink.submit(RecordingStored(
            params.get("CallSid", ""), params.get("RecordingSid", ""),
            params.get("RecordingUrl", ""), params.get("RecordingStatus", ""),
            _seconds(duration)))
        return Response(status_code=204)
    return _signed(server, handle)


def status(server: CallbridgeServer) -> Handler:
    async def handle(request: Request, params: dict[str, str]) -> Response:
        """Twilio's call status callback: recorded in any order; `completed` ends a live call."""
        call_sid, call_status = params.get("CallSid", ""), params.get("CallStatus", "")
        if not call_sid or not call_status:
            return PlainTextResponse("CallSid and CallStatus are required\n", status_code=400)
        duration = params.get("CallDuration")
        server.calls.sink.submit(StatusChanged(
            call_sid, call_status, time.time(),
            _seconds(duration),
            params.get("Direction", ""), params.get("From", ""), params.get("To", ""),
        ))
        if call_status in TERMINAL:
            await _end_live_call(server, call_sid, f"Twilio reports the call {call_status}")
        return Response(status_code=204)
    return _signed(server, handle)


async def _end_live_call(server: CallbridgeServer, call_sid: str, reason: str) -> None:
    """End the call here, or on the instance carrying its media stream."""
    bridge = server.calls.get(call_sid)
    if bridge is not None and (bridge.attached or not server.cluster.shared):
        bridge.end(reason)
        return
    route = await server.cluster.route(call_sid)
    if route is not None and route.owner not in (None, server.settings.instance_id):
        assert route.owner is not None
        await server.cluster.send(route.owner, {"op": "end", "call_sid": call_sid,
                                                "reason": reason})
    elif bridge is not None:
        bridge.end(reason)


def _seconds(duration: str | None) -> float | None:
    """A duration in whole seconds, or None if it is anything else."""
    # isdigit() alone is true for '²' and '③', which float() refuses
    if duration and duration.isascii() and duration.isdigit():
        return float(duration)
    return None


def media_stream(server: CallbridgeServer) -> Callable[[WebSocket], Awaitable[None]]:
    async def handle(ws: WebSocket) -> None:
        """Signature before accept, token on `start`, then the call's bridge."""
        signature = ws.headers.get("x-twilio-signature")
        if not server.signatures.upgrade_ok(ws.url.path, ws.url.query, signature):
            log.warning("media socket refused: bad or missing X-Twilio-Signature")
            await ws.close(code=1008)
            return
        await ws.accept()
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                frames, start = await _read_until_start(ws)
        except (TimeoutError, WebSocketDisconnect):
            log.warning("media socket closed: no valid `start` in time", seconds=START_TIMEOUT_S)
            await _close_quietly(ws)
            return
        if start is None:
            await _close_quietly(ws)
            return
        params = start.custom_parameters
        grant = server.tokens.redeem(params.get("token", ""), start.call_sid,
                                     params.get("from", ""), params.get("to", ""), time.time())
        if grant is None:
            log.warning("media socket refused: stream token missing, used, expired or foreign",
                        call_sid=start.call_sid)
            await _close_quietly(ws)
            return
        if not await server.cluster.redeem(grant.nonce, start.call_sid, grant.expires_at):
            log.warning("media socket refused: stream token already used on another instance",
                        call_sid=start.call_sid)
            await _close_quietly(ws)
            return
        bridge = server.calls.get(start.call_sid)
        if bridge is not None and bridge.attached:
            log.warning("media socket refused: the call already has a media stream",
                        call_sid=start.call_sid)
            await _close_quietly(ws)
            return
        route = await server.cluster.take(start.call_sid, CallFacts(
            "inbound", grant.from_number, grant.to_number))
        if bridge is None:
            bridge = _open_for_stream(server, start.call_sid, grant, route)
        if route is not None and route.answered_by is not None and route.facts.awaiting_answer:
            # The verdict reached the cluster before the stream: apply it once `start` is in.
            asyncio.get_running_loop().call_soon(bridge.answered_by, route.answered_by)
        await bridge.serve_twilio(ws, frames)
    return handle


def _open_for_stream(server: CallbridgeServer, call_sid: str, grant: Grant,
                     route: Route | None) -> Bridge:
    """The bridge of a call whose webhook this instance did not answer: the shared facts say
    which agent and whether to wait for the answering-machine verdict."""
    directory = server.settings.directory
    facts = route.facts if route is not None else CallFacts(
        "inbound", grant.from_number, grant.to_number)
    try:
        profile = directory.named(facts.agent) if facts.agent else None
    except ConfigError:
        log.error("the call's agent is not configured on this instance; using the number's",
                  call_sid=call_sid, agent=facts.agent)
        profile = None
    info = CallInfo(facts.direction, grant.from_number, grant.to_number)
    return server.calls.open(call_sid, info,
                             profile=profile or directory.for_number(grant.to_number),
                             awaiting_answer=facts.awaiting_answer)


async def _read_until_start(ws: WebSocket) -> tuple[list[str | bytes], tw.Start | None]:
    """Frames up to and including `start` (Twilio sends `connected`, then `start`)."""
    frames: list[str | bytes] = []
    while len(frames) < MAX_FRAMES_BEFORE_START:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        frame: str | bytes = message.get("text") or message.get("bytes") or b""
        frames.append(frame)
        try:
            parsed = tw.parse(frame)
        except TwilioProtocolError:
            continue
        if isinstance(parsed, tw.Start):
            return frames, parsed
    return frames, None


async def _close_quietly(ws: WebSocket) -> None:
    with contextlib.suppress(RuntimeError, OSError):
        await ws.close(code=1008)
