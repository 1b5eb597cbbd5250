"""The console's read-only pages over the call record: the call list and one call.

Every value reaches the browser through an autoescaping template; URLs that came from outside
(Twilio's recording link) are shown only when they are https. Filters that do not parse are
reported on the page, never guessed.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import Response

from callbridge.server.api import latency_summary
from callbridge.server.console.web import Console, Visit, render
from callbridge.store import browse

PAGE_SIZE = 50
MAX_FILTER = 200
MAX_SID = 64  # calls.call_sid is String(64)


def parse_filter(params: Any) -> browse.ConsoleFilter:
    """The list's filters from the query string; ValueError says what is wrong."""
    values: dict[str, str | None] = {}
    for name in ("number", "status", "agent", "direction", "words", "from", "to", "before"):
        raw = (params.get(name) or "").strip()
        if len(raw) > MAX_FILTER or "\x00" in raw:
            raise ValueError(f"{name} is too long or holds a NUL character")
        values[name] = raw or None
    since = _day(values["from"], "from")
    until = _day(values["to"], "to")
    before = values["before"]
    if before is not None and (not before.isascii() or not before.isdigit()
                               or not 1 <= int(before) <= 2**31 - 1):
        raise ValueError("before must be a call id")
    return browse.ConsoleFilter(
        number=values["number"], status=values["status"], agent=values["agent"],
        direction=values["direction"],
        since=since, until=until + timedelta(days=1) if until is not None else None,
        words=tuple((values["words"] or "").split())[: browse.MAX_WORDS],
        before_id=int(before) if before else None, limit=PAGE_SIZE)


def _day(raw: str | None, name: str) -> datetime | None:
    if raw is None:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{name} must be a date like 2026-12-06") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


async def call_list(console: Console, visit: Visit) -> Response:
    store = console.server.store
    params = visit.request.query_params
    if store is None:
        return render(visit, "message.html", 503, title="Calls",
                      message="The call record is off (DATABASE_URL=none).")
    try:
        query = parse_filter(params)
    except ValueError as exc:
        return render(visit, "calls.html", 400, calls=[], error=str(exc), params=params,
                      choices={}, next_query=None)
    try:
        calls = await browse.list_calls(store, query)
        choices = await browse.distinct_values(store)
    except SQLAlchemyError:
        return render(visit, "message.html", 503, title="Calls",
                      message="The database is unavailable.")
    next_query = None
    if len(calls) == query.limit:
        kept = {k: v for k, v in params.items() if k != "before" and v}
        next_query = {**kept, "before": str(calls[-1]["id"])}
    return render(visit, "calls.html", calls=calls, error="", params=params, choices=choices,
                  next_query=next_query)


async def call_page(console: Console, visit: Visit) -> Response:
    store = console.server.store
    call_sid = visit.request.path_params["call_sid"]
    if store is None:
        return render(visit, "message.html", 503, title="Call",
                      message="The call record is off (DATABASE_URL=none).")
    if len(call_sid) > MAX_SID or "\x00" in call_sid:  # no such call; PostgreSQL refuses NUL
        return render(visit, "message.html", 404, title="No such call",
                      message="That is not a call id.")
    try:
        call = await store.get_call(call_sid)
    except SQLAlchemyError:
        return render(visit, "message.html", 503, title="Call",
                      message="The database is unavailable.")
    if call is None:
        return render(visit, "message.html", 404, title="No such call",
                      message=f"There is no call {call_sid} on the record.")
    recording = None
    if call.get("audio_path"):
        recording, _ = console.server.recordings.link(call_sid)
    twilio_recording = call.get("recording_url") or ""
    if not str(twilio_recording).startswith("https://"):
        twilio_recording = ""
    latency = [e["detail"] for e in call["events"] if e["kind"] == "turn_latency"]
    return render(visit, "call.html", call=call, recording=recording,
                  twilio_recording=twilio_recording, shift_s=_stream_shift(call),
                  latency=latency, latency_summary=latency_summary(call["events"]),
                  pretty=pretty, live=await console.live.get(call_sid) is not None)


def _stream_shift(call: dict[str, Any]) -> float:
    """Seconds between the call's creation (turn offsets count from it) and the media stream's
    start (the recording's time zero)."""
    created, answered = call.get("created_at"), call.get("answered_at")
    if not created or not answered:
        return 0.0
    shift = (datetime.fromisoformat(answered) - datetime.fromisoformat(created)).total_seconds()
    return max(0.0, shift)


def pretty(value: object) -> str:
    """JSON text (a tool's arguments or result, a custom field) indented for reading."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return str(value)
    if value is None:
        return ""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
