"""The capture file: one call's session inputs and the decisions they produced, on the call's
clock, as gzipped JSON lines — and the masking applied before anything reaches the disk.

Owns the format (a header line: the call, its agent profile, the handoff agents, the session's
timing; then one line per entry-point call: its name, arguments, time and what went out on the
wire), turning the core's actions into wire form (Twilio frames, Realtime client events, the
REST hang-up and redirect) so a capture outlives changes to the core's action classes, and
masking: phone numbers (`+` and 7-15 digits) become `+1555•••4567` everywhere except inside
audio frames, which are kept byte for byte; stream tokens and the webhook secret are dropped.
The same masking applies to what replay produces, so both sides compare alike.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callbridge.core.agent import AgentProfile
from callbridge.core.session import Timing
from callbridge.redact import mask_number

FORMAT = "callbridge-capture/1"
MESSAGE_INPUTS = frozenset({"receive_twilio", "receive_realtime"})
_NUMBER = re.compile(r"\+\d{7,15}")
_AUDIO = re.compile(r'"(?:event"\s*:\s*"media|type"\s*:\s*"(?:input_audio_buffer\.append'
                    r'|response\.output_audio\.delta))"')
_TOKEN = re.compile(r'("token"\s*:\s*")[^"]*(")')
Wire = list[Any]  # ["twilio", text] | ["realtime", text] | ["rest", "hang_up" | "redirect", …]


class CaptureError(Exception):
    """A capture file that cannot be read: not one, cut short, or of an unknown format."""


@dataclass
class Entry:
    """One call of a session entry point and the decisions it returned, in wire form."""

    call: str
    args: list[Any]
    now: float
    out: list[Wire]


@dataclass
class Capture:
    """A whole captured call."""

    call_sid: str
    profile: AgentProfile
    agents: dict[str, AgentProfile]
    timing: Timing
    awaiting_answer: bool
    started_at: float  # wall-clock seconds
    entries: list[Entry] = field(default_factory=list)
    truncated_at: float | None = None  # the size limit stopped the capture here


def mask_text(text: str) -> str:
    """`text` with phone numbers masked and stream tokens dropped; audio frames unchanged."""
    if _AUDIO.search(text):
        return text
    return _TOKEN.sub(r"\1•••\2", _NUMBER.sub(lambda m: mask_number(m.group()), text))


def wire_of(actions: Iterable[object]) -> list[Wire]:
    """What the session's actions put on the wire, masked. Duck-typed on purpose: only the
    wire messages and REST calls are compared, never the core's own action types."""
    out: list[Wire] = []
    for action in actions:
        kind = type(action).__name__
        if kind == "SendTwilio":
            out.append(["twilio", mask_text(action.message.serialize())])  # type: ignore[attr-defined]
        elif kind == "SendRealtime":
            out.append(["realtime", mask_text(action.event.serialize())])  # type: ignore[attr-defined]
        elif kind == "HangUp":
            out.append(["rest", "hang_up"])
        elif kind == "RedirectCall":
            out.append(["rest", "redirect", mask_text(action.twiml)])  # type: ignore[attr-defined]
    return out


def masked_arguments(args: tuple[Any, ...]) -> list[Any]:
    """An entry point's arguments as JSON values: frames as text (bytes that are not UTF-8 as
    `{"b64": …}`), every string masked."""
    values: list[Any] = []
    for value in args:
        if isinstance(value, bytes | bytearray | memoryview):
            raw = bytes(value)
            try:
                value = raw.decode("utf-8")
            except UnicodeDecodeError:
                values.append({"b64": base64.b64encode(raw).decode()})
                continue
        values.append(mask_text(value) if isinstance(value, str) else value)
    return values


def argument_values(args: list[Any]) -> tuple[Any, ...]:
    """The arguments to call the entry point with again."""
    return tuple(base64.b64decode(a["b64"]) if isinstance(a, dict) and "b64" in a else a
                 for a in args)


def profile_json(profile: AgentProfile) -> dict[str, Any]:
    values = dataclasses.asdict(profile)
    values["webhook_secret"] = None
    masked: dict[str, Any] = _masked(values)
    return masked


def profile_from(values: Mapping[str, Any]) -> AgentProfile:
    """The profile in a capture; settings this version does not know are ignored."""
    known = {f.name: f for f in dataclasses.fields(AgentProfile)}
    kept: dict[str, Any] = {}
    for key, value in values.items():
        if key in known:
            kept[key] = tuple(value) if isinstance(value, list) and _is_tuple(known[key]) \
                else value
    return AgentProfile(**kept)


def timing_from(values: Mapping[str, Any]) -> Timing:
    known = {f.name for f in dataclasses.fields(Timing)}
    kept: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                            for k, v in values.items() if k in known}
    return Timing(**kept)


def _is_tuple(spec: dataclasses.Field[Any]) -> bool:
    return "tuple" in str(spec.type)


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value


def write(path: Path, capture: Capture, lines: Iterable[str]) -> None:
    """Write the header and the already-encoded entry lines (gzip; a temporary name first, so a
    reader never sees half a file)."""
    header = {
        "format": FORMAT, "call_sid": capture.call_sid, "started_at": capture.started_at,
        "profile": profile_json(capture.profile),
        "agents": {name: profile_json(p) for name, p in capture.agents.items()},
        "timing": dataclasses.asdict(capture.timing), "awaiting_answer": capture.awaiting_answer,
        "truncated_at": capture.truncated_at,
    }
    partial = path.with_name(path.name + ".partial")
    with gzip.open(partial, "wt", encoding="utf-8", compresslevel=5) as out:
        out.write(json.dumps(header, ensure_ascii=False) + "\n")
        for line in lines:
            out.write(line)
    partial.replace(path)


def entry_line(entry: Entry) -> str:
    return json.dumps({"call": entry.call, "args": entry.args, "now": entry.now,
                       "out": entry.out}, ensure_ascii=False) + "\n"


def read(path: Path) -> Capture:
    """The capture in `path`. Raises CaptureError with one line saying what is wrong."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            return _parse(iter(lines), path)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise CaptureError(f"{path}: cannot read it: {exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise CaptureError(f"{path}: not a capture file: {exc}") from exc


def _parse(lines: Iterator[str], path: Path) -> Capture:
    header = json.loads(next(lines, "null"))
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CaptureError(f"{path}: not a {FORMAT} file")
    capture = Capture(
        call_sid=str(header["call_sid"]), profile=profile_from(header["profile"]),
        agents={name: profile_from(p) for name, p in header["agents"].items()},
        timing=timing_from(header["timing"]), awaiting_answer=bool(header["awaiting_answer"]),
        started_at=float(header["started_at"]), truncated_at=header.get("truncated_at"))
    for line in lines:
        raw = json.loads(line)
        capture.entries.append(Entry(str(raw["call"]), list(raw["args"]), float(raw["now"]),
                                     list(raw["out"])))
    return capture
