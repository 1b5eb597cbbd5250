"""The softphone: talk to an agent from the browser, on the same call path as a phone call.

The page turns the microphone into 8 kHz μ-law frames and speaks Twilio's Media Streams protocol
over a WebSocket (`media`, `mark` echoes, `stop`); this module admits the socket — a console
session and a same-origin upgrade, checked before `accept()` — and hands it to a `Bridge` made
by the `CallRegistry` exactly as for a Twilio stream, with direction `browser`. The `connected`
and `start` frames are written here, so the browser never names the call. The Twilio routes and
their signature checks are untouched.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.responses import Response
from starlette.websockets import WebSocket

from callbridge.errors import ConfigError
from callbridge.logs import get_logger
from callbridge.server.bridge import CallInfo
from callbridge.server.console.auth import COOKIE
from callbridge.server.console.web import Console, Visit, render

log = get_logger("callbridge.server.console")

DIRECTION = "browser"


async def softphone_page(console: Console, visit: Visit) -> Response:
    directory = console.server.settings.directory
    return render(visit, "softphone.html", agents=sorted(directory.agents),
                  default=directory.default)


def same_origin(ws: WebSocket) -> bool:
    """The upgrade came from a page of this host (browsers always send Origin on WebSockets)."""
    origin = ws.headers.get("origin")
    host = ws.headers.get("host")
    return bool(origin and host) and urlsplit(origin).netloc == host


def start_frames(call_sid: str, stream_sid: str) -> list[str | bytes]:
    """What Twilio would send first: `connected`, then `start` for an inbound μ-law track."""
    return [
        json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
        json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": stream_sid, "start": {
            "streamSid": stream_sid, "callSid": call_sid, "accountSid": "",
            "tracks": ["inbound"], "customParameters": {},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}),
    ]


def socket(console: Console) -> Callable[[WebSocket], Awaitable[None]]:
    async def handle(ws: WebSocket) -> None:
        """Session and origin before accept; then the call, until either side hangs up."""
        server = console.server
        if console.auth.read(ws.cookies.get(COOKIE)) is None or not same_origin(ws):
            log.warning("softphone socket refused: no console session or a foreign origin")
            await ws.close(code=1008)
            return
        try:
            profile = server.settings.directory.named(ws.query_params.get("agent") or None)
        except ConfigError:
            await ws.close(code=1008)
            return
        refusal = server.admission.refusal(len(server.calls), server.now())
        if refusal is not None:
            log.warning("softphone call refused", reason=refusal)
            await ws.close(code=1013)
            return
        call_sid = "BR" + secrets.token_hex(16)
        stream_sid = "MZ" + secrets.token_hex(16)
        await ws.accept()
        await ws.send_text(json.dumps({"event": "softphone", "callSid": call_sid,
                                       "streamSid": stream_sid, "agent": profile.name}))
        log.info("softphone call", call_sid=call_sid, agent=profile.name)
        bridge = server.calls.open(call_sid, CallInfo(DIRECTION, DIRECTION, profile.name),
                                   profile=profile)
        await bridge.serve_twilio(ws, start_frames(call_sid, stream_sid))
    return handle
