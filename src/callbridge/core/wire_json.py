"""What both model APIs' event modules share: compact JSON out, and server frames in — parsed,
checked to be an object with a string `type`, handed to the builder for that type (or kept
whole as the module's `Unknown`), with every failure raised as the module's own protocol error.
The field checks here are the ones every id and text the session keys on must pass.
No I/O. No clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import orjson

from callbridge.errors import ProtocolError

_COMPACT = (",", ":")
Event = TypeVar("Event")


def dumps(payload: dict[str, Any]) -> str:
    """A client event as compact JSON, non-ASCII text kept as it is."""
    return json.dumps(payload, separators=_COMPACT, ensure_ascii=False)


def parse_event(text: str | bytes, builders: Mapping[str, Callable[[dict[str, Any]], Event]],
                unknown: Callable[[str, dict[str, Any]], Event],
                error: type[ProtocolError]) -> Event:
    """One server frame as its builder's value, or `unknown(type, data)` for a type without a
    builder. Raises only `error`: not JSON, no string `type`, or a builder that found a field
    missing or of the wrong type."""
    try:
        event = orjson.loads(text)
    except (ValueError, TypeError, RecursionError) as exc:
        raise error(f"event is not JSON: {exc}") from exc
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise error("event is not an object with a string `type`")
    kind: str = event["type"]
    builder = builders.get(kind)
    if builder is None:
        return unknown(kind, event)
    try:
        return builder(event)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise error(f"{kind} is malformed: {exc!r}") from exc


def text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def json_object(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value
