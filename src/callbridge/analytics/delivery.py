"""One webhook event, POSTed once to the user's URL, and what came of it.

Owns the event's JSON body — `{"id", "type", "created_at", "data": {call, transcript,
analysis?}}`, the same bytes on every retry (`id` is `<CallSid>:<event>`, `created_at` the job's
creation) — its signed headers, and one HTTP attempt through httpx, whose exceptions are turned
into a failed `DeliveryAttempt` here. A 2xx answer is delivered; anything else is not. Decides
nothing about retries: the job queue does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from callbridge import __version__
from callbridge.store.outcomes import DeliveryAttempt
from callbridge.webhooks import EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, sign

EVENTS = ("call.ended", "call.analyzed")
_NOT_CALL_FIELDS = frozenset({"transcript", "tool_calls", "events", "usage", "analysis",
                              "webhook_deliveries"})


def event_id(call_sid: str, event: str) -> str:
    """The event's id: the same for every delivery of it, so receivers can drop repeats."""
    return f"{call_sid}:{event}"


def event_body(event: str, call: Mapping[str, Any], created_at: float) -> bytes:
    """The JSON body of `event` for `call` (as `CallStore.get_call` returns it)."""
    data: dict[str, Any] = {
        "call": {k: v for k, v in call.items() if k not in _NOT_CALL_FIELDS},
        "transcript": call.get("transcript", []),
    }
    if event == "call.analyzed":
        data["analysis"] = call.get("analysis")
    payload = {"id": event_id(str(call["call_sid"]), event), "type": event,
               "created_at": datetime.fromtimestamp(created_at, UTC).isoformat(), "data": data}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


class WebhookSender:
    """POSTs signed events with one shared client (no redirects followed)."""

    def __init__(self, client: httpx.AsyncClient, timeout_s: float = 10.0) -> None:
        self.client = client
        self.timeout_s = timeout_s

    async def send(self, url: str, secret: str, event: str, call_sid: str, body: bytes,
                   now: float) -> DeliveryAttempt:
        """One attempt; never raises for the receiver's faults."""
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"callbridge/{__version__}",
            SIGNATURE_HEADER: sign(secret, body, int(now)),
            EVENT_ID_HEADER: event_id(call_sid, event),
            EVENT_TYPE_HEADER: event,
        }
        try:
            response = await self.client.post(url, content=body, headers=headers,
                                              timeout=self.timeout_s, follow_redirects=False)
        except httpx.HTTPError as exc:
            reason = str(exc).splitlines()[0][:200] if str(exc) else ""
            return DeliveryAttempt(event, url, None, f"{type(exc).__name__}: {reason}".rstrip(": "),
                                   delivered=False)
        if 200 <= response.status_code < 300:
            return DeliveryAttempt(event, url, response.status_code, None, delivered=True)
        return DeliveryAttempt(event, url, response.status_code,
                               f"the receiver answered HTTP {response.status_code}",
                               delivered=False)
