"""A tool's return value as the text of a `function_call_output`.

A str is sent as-is. Anything else becomes compact JSON: dicts, lists, tuples, numbers, bools and
None as JSON has them; dataclasses as objects of their fields, Enum members as their values,
datetimes, dates and times in ISO 8601, sets as arrays. NaN and infinities are refused, because
JSON has no spelling for them. No I/O. No clock.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
from typing import Any


def encode_output(value: object) -> str:
    """The output text for a return value; TypeError or ValueError if JSON cannot carry it."""
    if isinstance(value, str):
        return value
    return json.dumps(
        value, default=_jsonable, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def to_json_value(value: object) -> Any:
    """`value` as plain JSON data (dicts, lists, str, numbers, bools, None). Raises like above."""
    return json.loads(json.dumps(value, default=_jsonable, allow_nan=False))


def _jsonable(obj: object) -> object:
    """json's `default` hook: one level at a time, json recurses into what this returns."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {field.name: getattr(obj, field.name) for field in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, datetime.date | datetime.time):  # datetime is a date
        return obj.isoformat()
    if isinstance(obj, set | frozenset):
        return list(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")
