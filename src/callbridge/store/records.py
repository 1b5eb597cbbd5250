"""What a call writes to its record, as plain values that also round-trip through the journal.

Each record names its call and carries a natural key (CallSid, item id, tool call id, event
sequence number, response id), so applying it twice — a retried batch, a replayed journal — never
makes a second row.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class CallOpened:
    call_sid: str
    direction: str
    from_number: str
    to_number: str
    agent: str
    model: str
    voice: str
    instance: str
    at: float  # Unix time


@dataclass(frozen=True, slots=True)
class CallAnswered:
    call_sid: str
    stream_sid: str
    at: float


@dataclass(frozen=True, slots=True)
class TurnRecorded:
    call_sid: str
    item_id: str
    role: str
    text: str
    heard: str
    interrupted: bool
    started_ms: int  # offsets from the call's start
    ended_ms: int


@dataclass(frozen=True, slots=True)
class ToolRecorded:
    call_sid: str
    call_id: str
    name: str
    arguments: str
    result: str | None
    error: str | None
    duration_ms: int
    at: float


@dataclass(frozen=True, slots=True)
class EventRecorded:
    call_sid: str
    seq: int
    kind: str
    at: float
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UsageRecorded:
    call_sid: str
    response_id: str
    usage: dict[str, Any]
    cost_usd: float


@dataclass(frozen=True, slots=True)
class CallEnded:
    call_sid: str
    at: float
    reason: str
    duration_s: float
    cost_usd: float


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """A Twilio status callback. Applied only if it does not move the call backwards."""

    call_sid: str
    status: str
    at: float
    duration_s: float | None = None
    direction: str = ""
    from_number: str = ""
    to_number: str = ""


@dataclass(frozen=True, slots=True)
class RecordingStored:
    """Twilio finished (or failed) a recording of the call."""

    call_sid: str
    recording_sid: str
    url: str
    status: str
    duration_s: float | None = None


@dataclass(frozen=True, slots=True)
class AudioSaved:
    """The as-heard recording of the call was written."""

    call_sid: str
    path: str
    seconds: float


Record = (
    CallOpened | CallAnswered | TurnRecorded | ToolRecorded | EventRecorded | UsageRecorded
    | CallEnded | StatusChanged | RecordingStored | AudioSaved
)

RECORD_TYPES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (CallOpened, CallAnswered, TurnRecorded, ToolRecorded, EventRecorded,
                UsageRecorded, CallEnded, StatusChanged, RecordingStored, AudioSaved)
}


def without_nul(record: Record) -> Record:
    """`record` with U+0000 taken out of its text fields, which PostgreSQL refuses in text (a
    model's transcript can hold one); `record` itself when it has none. JSON fields keep theirs:
    JSON writes it as an escape, which both databases store."""
    changes = {field.name: value.replace("\x00", "") for field in dataclasses.fields(record)
               if isinstance(value := getattr(record, field.name), str) and "\x00" in value}
    if not changes:
        return record
    # mypy types replace() on a union of dataclasses as taking no fields at all
    cleaned: Record = dataclasses.replace(record, **changes)  # type: ignore[arg-type]
    return cleaned


def to_dict(record: Record) -> dict[str, Any]:
    """A JSON-ready dict with the record's type under "record"."""
    return {"record": type(record).__name__, **dataclasses.asdict(record)}


def from_dict(data: dict[str, Any]) -> Record:
    """The record `to_dict` produced. Raises ValueError for an unknown kind or missing field."""
    values = dict(data)
    cls = RECORD_TYPES.get(str(values.pop("record", "")))
    if cls is None:
        raise ValueError(f"unknown record type {data.get('record')!r}")
    try:
        record: Record = cls(**values)
    except TypeError as exc:
        raise ValueError(f"bad {cls.__name__} record: {exc}") from exc
    return record
