"""The JSON API over the call record, and the one route that places calls:

- `GET /api/calls` — calls, newest first, filtered and paged;
- `POST /api/calls` — place an outbound call through Twilio's REST API;
- `GET /api/calls/{sid}` — one call with its transcript, tools, events, usage and analysis;
- `GET /api/calls/{sid}/recording` — a short-lived signed link to the as-heard recording;
- `GET /recordings/{sid}.wav` — the recording itself, only through such a link.

Owns bearer-token authentication (`CALLBRIDGE_API_TOKEN`; without one configured the API is off)
and query parsing. Everything it returns comes from the database, never from live memory.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from callbridge.errors import ConfigError
from callbridge.server.outbound import place_call as place_call_via_rest
from callbridge.server.twilio_rest import TwilioRestError
from callbridge.store.repository import CallFilter

if TYPE_CHECKING:
    from callbridge.server.app import CallbridgeServer

Handler = Callable[[Request], Awaitable[Response]]
MAX_PAGE = 500
MAX_ID = 2**31 - 1  # calls.id is sa.Integer: 32 bits on PostgreSQL, which refuses more


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


def _refusal(server: CallbridgeServer, request: Request,
             needs_store: bool = True) -> Response | None:
    expected = server.settings.api_token
    if not expected:
        return _error(403, "the API is disabled: set CALLBRIDGE_API_TOKEN")
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(token.encode(), expected.encode()):
        return JSONResponse({"error": "a valid bearer token is required"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})
    if needs_store and server.store is None:
        return _error(503, "the call record is off (DATABASE_URL=none)")
    return None


def list_calls(server: CallbridgeServer) -> Handler:
    async def handle(request: Request) -> Response:
        """Calls, newest first. Filters: since (ISO 8601), status, number; pages via `before`."""
        refusal = _refusal(server, request)
        if refusal is not None:
            return refusal
        assert server.store is not None
        try:
            query = _filter(request)
        except ValueError as exc:
            return _error(400, str(exc))
        try:
            calls = await server.store.list_calls(query)
        except SQLAlchemyError:
            return _error(503, "the database is unavailable")
        after = calls[-1]["id"] if len(calls) == query.limit else None
        return JSONResponse({"calls": calls, "next_before": after})
    return handle


def place_call(server: CallbridgeServer) -> Handler:
    async def handle(request: Request) -> Response:
        """Place an outbound call: JSON {"to", "agent"?, "from"?, "detect_machine"?}."""
        refusal = _refusal(server, request, needs_store=False)
        if refusal is not None:
            return refusal
        rest = server.calls.rest
        if rest is None:
            return _error(503, "outbound calls need TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "the body must be JSON")
        to = body.get("to") if isinstance(body, dict) else None
        if not isinstance(to, str) or not to:
            return _error(400, "`to` (the number to call, E.164) is required")
        try:
            call = await place_call_via_rest(rest, server.settings, to, agent=body.get("agent"),
                                             from_number=body.get("from"),
                                             detect_machine=bool(body.get("detect_machine", True)))
        except ConfigError as exc:
            return _error(400, str(exc))
        except TwilioRestError as exc:
            return _error(502, f"Twilio refused the call: {exc}")
        return JSONResponse({"call_sid": call.sid, "status": call.status}, status_code=202)
    return handle


def get_call(server: CallbridgeServer) -> Handler:
    async def handle(request: Request) -> Response:
        """One call with its transcript, tool calls, events, usage, analysis (or null) and
        webhook delivery attempts."""
        refusal = _refusal(server, request)
        if refusal is not None:
            return refusal
        assert server.store is not None
        try:
            call = await server.store.get_call(request.path_params["call_sid"])
        except SQLAlchemyError:
            return _error(503, "the database is unavailable")
        if call is None:
            return _error(404, "no such call")
        call["latency"] = latency_summary(call["events"])
        return JSONResponse(call)
    return handle


def recording_link(server: CallbridgeServer) -> Handler:
    async def handle(request: Request) -> Response:
        """A link to the call's as-heard recording, valid for a few minutes."""
        refusal = _refusal(server, request)
        if refusal is not None:
            return refusal
        assert server.store is not None
        call_sid = request.path_params["call_sid"]
        call = await server.store.get_call(call_sid)
        if call is None or not call.get("audio_path"):
            return _error(404, "this call has no as-heard recording")
        url, expires = server.recordings.link(call_sid)
        return JSONResponse({"url": url, "expires_at": expires,
                             "seconds": call.get("audio_seconds")})
    return handle


def recording_file(server: CallbridgeServer) -> Handler:
    async def handle(request: Request) -> Response:
        """The recording itself, only through a valid, unexpired signed link."""
        call_sid = request.path_params["call_sid"]
        params = request.query_params
        if not server.recordings.check(call_sid, params.get("expires", ""),
                                       params.get("signature", "")):
            return _error(403, "the link is invalid or has expired")
        try:
            path = server.recordings.path(call_sid)
        except ValueError:
            return _error(404, "no such recording")
        if not path.is_file():
            return _error(404, "no such recording")
        return FileResponse(path, media_type="audio/wav", filename=path.name)
    return handle


def latency_summary(events: list[dict[str, Any]]) -> dict[str, Any]:
    """p50/p95 of the call's turn latencies (caller-perceived and the model's share), in ms."""
    heard = sorted(int(e["detail"]["ms"]) for e in events if e["kind"] == "turn_latency")
    model = sorted(int(e["detail"]["model_ms"]) for e in events
                   if e["kind"] == "turn_latency" and e["detail"].get("model_ms") is not None)
    return {"turns": len(heard), "p50_ms": _percentile(heard, 0.5),
            "p95_ms": _percentile(heard, 0.95), "model_p50_ms": _percentile(model, 0.5),
            "model_p95_ms": _percentile(model, 0.95)}


def _percentile(values: list[int], q: float) -> int | None:
    if not values:
        return None
    return values[min(len(values) - 1, int(q * len(values)))]


def _filter(request: Request) -> CallFilter:
    params = request.query_params
    since = None
    if params.get("since"):
        try:
            since = datetime.fromisoformat(params["since"].replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("since must be an ISO 8601 time, e.g. 2026-11-21T08:00:00Z") from None
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        try:
            since = since.astimezone(UTC)  # a time whose UTC falls outside years 1–9999 overflows
        except OverflowError:
            raise ValueError("since is out of range") from None
    limit = _int(params.get("limit"), "limit", 50)
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
    before = params.get("before")
    before_id = _int(before, "before", 0) if before else None
    if before_id is not None and not 1 <= before_id <= MAX_ID:
        raise ValueError(f"before must be between 1 and {MAX_ID}")
    status, number = params.get("status") or None, params.get("number") or None
    for name, value in (("status", status), ("number", number)):
        if value is not None and "\x00" in value:  # PostgreSQL refuses NUL in text
            raise ValueError(f"{name} must not contain a NUL character")
    return CallFilter(since=since, status=status, number=number, before_id=before_id,
                      limit=limit)


def _int(raw: str | None, name: str, default: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number") from None
