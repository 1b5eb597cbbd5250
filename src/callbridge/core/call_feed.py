"""What a live call's followers see (the live-call API's event stream), as plain JSON values.

Owns the translation of the session's actions — finished turns, tool runs, notes, the hang-up
or transfer — and of the Realtime frames carrying transcript deltas into small dictionaries with
a `type`: `transcript.delta`, `turn`, `tool_call`, `event`, `end` (`ended()`). Only called while
someone follows the call, never on an unwatched call's path. No I/O. No clock.
"""

from __future__ import annotations

import json
from typing import Any

from callbridge.core.actions import (
    Action,
    HangUp,
    RedirectCall,
    RunTool,
    TurnFinished,
)
from callbridge.core.reports import REPORTS

LiveEvent = dict[str, Any]

# Notes that are bookkeeping, not events a follower cares about.
_QUIET = frozenset({"response_done"})
_DELTAS = {b"response.output_audio_transcript.delta": "agent",
           b"conversation.item.input_audio_transcription.delta": "caller",
           b"session.output_transcript.delta": "agent",  # GPT-Live
           b"session.input_transcript.delta": "caller"}
MAX_FIELD_CHARS = 2000  # a follower's event fits a 8 kB message between instances


def _clip(text: str, at: int = MAX_FIELD_CHARS) -> str:
    return text if len(text) <= at else text[:at] + "…"


def from_actions(actions: list[Action]) -> list[LiveEvent]:
    """The followers' events among `actions` (most actions, e.g. audio frames, are none)."""
    events: list[LiveEvent] = []
    for action in actions:
        kind = type(action)
        if kind is TurnFinished:
            assert isinstance(action, TurnFinished)
            events.append(turn(action))
        elif kind is RunTool:
            assert isinstance(action, RunTool)
            events.append({"type": "tool_call", "name": action.name, "call_id": action.call_id,
                           "arguments": _clip(action.arguments)})
        elif isinstance(action, REPORTS):  # notes and typed reports alike
            if action.kind not in _QUIET:
                events.append({"type": "event", "kind": action.kind,
                               "detail": _jsonable(action.details())})
        elif kind is HangUp or kind is RedirectCall:
            assert isinstance(action, HangUp | RedirectCall)
            events.append({"type": "event", "kind": "closing", "detail": {
                "action": "hangup" if kind is HangUp else "transfer", "reason": action.reason}})
    return events


def turn(finished: TurnFinished, clip_at: int = MAX_FIELD_CHARS) -> LiveEvent:
    """The `turn` event of a finished turn (also how a follower is shown the turns so far)."""
    return {"type": "turn", "role": finished.role, "item_id": finished.item_id,
            "text": _clip(finished.text, clip_at), "heard": _clip(finished.heard, clip_at),
            "interrupted": finished.interrupted}


def transcript_delta(frame: bytes | str) -> LiveEvent | None:
    """A `transcript.delta` event when `frame` is a model's transcript delta (Realtime or
    GPT-Live), else None."""
    raw = frame.encode() if isinstance(frame, str) else frame
    role = next((who for marker, who in _DELTAS.items() if marker in raw), None)
    if role is None:
        return None
    try:
        event = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    delta, item_id = event.get("delta"), event.get("item_id", "")  # GPT-Live has no item ids
    if not isinstance(delta, str) or not isinstance(item_id, str):
        return None
    return {"type": "transcript.delta", "role": role, "item_id": item_id, "delta": _clip(delta)}


def ended(reason: str) -> LiveEvent:
    """The last event of every stream."""
    return {"type": "end", "reason": reason}


def _jsonable(detail: dict[str, Any]) -> dict[str, Any]:
    """`detail` as JSON would carry it (anything unusual becomes its string)."""
    try:
        text = json.dumps(detail, default=str)
    except (TypeError, ValueError):
        return {"detail": _clip(str(detail))}
    if len(text) > MAX_FIELD_CHARS:
        return {"detail": _clip(text)}
    loaded: dict[str, Any] = json.loads(text)
    return loaded
