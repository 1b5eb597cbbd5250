"""`callbridge replay FILE`: a captured call driven through today's core, decision by decision.

Owns replaying (a fresh `CallSession` built from the capture's profile and timing, given every
captured entry-point call with its captured time, in order — deterministic, as the core reads
no clock and draws no randomness) and comparing what it decides with what was sent on the call,
on the wire: Twilio frames and Realtime client events compared as parsed JSON (so formatting
does not count), and the REST hang-up and redirect. `changes` replays with agent settings
changed ("what if filler_after_s had been 3?"). The report lists the first divergence with the
input that caused it and both sides' decisions; `--all` lists every step.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from callbridge.capture.file import (
    MESSAGE_INPUTS,
    Capture,
    CaptureError,
    Entry,
    Wire,
    argument_values,
    read,
    wire_of,
)
from callbridge.core.agent import AgentProfile
from callbridge.core.session import CallSession

SessionFactory = Callable[[Capture, AgentProfile], CallSession]


@dataclass
class Step:
    index: int
    entry: Entry
    decided: list[Wire]

    @property
    def same(self) -> bool:
        return _comparable(self.entry.out) == _comparable(self.decided)


@dataclass
class ReplayResult:
    capture: Capture
    steps: list[Step] = field(default_factory=list)

    @property
    def divergences(self) -> list[Step]:
        return [step for step in self.steps if not step.same]

    @property
    def first_divergence(self) -> Step | None:
        return next((step for step in self.steps if not step.same), None)


def default_session(capture: Capture, profile: AgentProfile) -> CallSession:
    return CallSession(capture.call_sid, profile, capture.timing, agents=capture.agents,
                       awaiting_answer=capture.awaiting_answer)


def replay(capture: Capture, *, changes: Mapping[str, Any] | None = None,
           session: SessionFactory = default_session) -> ReplayResult:
    """Drive a new session with the capture's inputs and keep both sides' decisions."""
    profile = capture.profile
    if changes:
        profile = dataclasses.replace(profile, **dict(changes))
    fresh = session(capture, profile)
    result = ReplayResult(capture)
    for index, entry in enumerate(capture.entries):
        method = getattr(fresh, entry.call)
        actions = method(*argument_values(entry.args))
        result.steps.append(Step(index, entry, wire_of(actions)))
    return result


def _comparable(wires: list[Wire]) -> list[Any]:
    values = []
    for wire in wires:
        if wire[0] in ("twilio", "realtime"):
            try:
                values.append([wire[0], json.loads(wire[1])])
                continue
            except ValueError:
                pass
        values.append(wire)
    return values


# ---------------------------------------------------------------------------- the report


def describe_input(entry: Entry) -> str:
    if entry.call in MESSAGE_INPUTS:
        side = "twilio" if entry.call == "receive_twilio" else "realtime"
        return f"{side} → {_message_name(entry.args[0])}"
    extra = [str(a) for a in entry.args if not isinstance(a, float)]
    return entry.call + (f" ({', '.join(extra)[:60]})" if extra else "")


def describe_output(wires: list[Wire]) -> str:
    if not wires:
        return "(nothing)"
    names: list[str] = []
    for wire in wires:
        if wire[0] == "rest":
            names.append(f"REST {wire[1]}")
        else:
            names.append(f"{wire[0]} {_message_name(wire[1])}")
    counted: list[str] = []
    for name in names:
        if counted and counted[-1].split(" ×")[0] == name:
            base, _, times = counted[-1].partition(" ×")
            counted[-1] = f"{base} ×{int(times or 1) + 1}"
        else:
            counted.append(name)
    return ", ".join(counted)


def _message_name(text: object) -> str:
    if not isinstance(text, str):
        return "(binary frame)"
    try:
        message = json.loads(text)
    except ValueError:
        return "(not JSON)"
    if not isinstance(message, dict):
        return "(not an object)"
    name = str(message.get("event") or message.get("type") or "?")
    if name == "mark" and isinstance(message.get("mark"), dict):
        name += f" {message['mark'].get('name')}"
    return name


def print_report(result: ReplayResult, out: TextIO, *, every_step: bool = False,
                 context: int = 3) -> None:
    capture = result.capture
    entries = capture.entries
    span = entries[-1].now - entries[0].now if entries else 0.0
    print(f"call {capture.call_sid}  agent {capture.profile.name}  "
          f"{len(entries)} inputs over {span:.1f} s", file=out)
    if capture.truncated_at is not None:
        print("  the capture was cut at its size limit: replayed up to there", file=out)
    origin = entries[0].now if entries else 0.0
    first = result.first_divergence
    shown: set[int] = set(range(len(result.steps))) if every_step else set()
    if first is not None and not every_step:
        shown = set(range(max(0, first.index - context), first.index + 1))
    if shown:
        print(f"\n  {'#':>5} {'t (s)':>7}  {'input':<40} decisions", file=out)
    for step in result.steps:
        if step.index not in shown:
            continue
        mark = "  " if step.same else "≠ "
        print(f"{mark}{step.index:>5} {step.entry.now - origin:>7.3f}  "
              f"{describe_input(step.entry):<40} {describe_output(step.entry.out)}", file=out)
        if not step.same:
            print(f"  {'':>5} {'':>7}  {'  replayed now:':<40} "
                  f"{describe_output(step.decided)}", file=out)
            _print_difference(step, out)
    if first is None:
        print(f"\nno divergence: {len(result.steps)} inputs, "
              f"{sum(len(s.decided) for s in result.steps)} decisions, all as sent", file=out)
    else:
        print(f"\nDIVERGED at input #{first.index} ({describe_input(first.entry)}, "
              f"{first.entry.now - origin:.3f} s into the call); "
              f"{len(result.divergences)} of {len(result.steps)} inputs differ", file=out)


def _print_difference(step: Step, out: TextIO) -> None:
    sent, decided = _comparable(step.entry.out), _comparable(step.decided)
    for position in range(max(len(sent), len(decided))):
        then = sent[position] if position < len(sent) else None
        now = decided[position] if position < len(decided) else None
        if then != now:
            print(f"  {'':>13}  first difference, decision {position + 1}:", file=out)
            print(f"  {'':>13}    sent:     {_clip(then)}", file=out)
            print(f"  {'':>13}    replayed: {_clip(now)}", file=out)
            return


def _clip(value: object) -> str:
    text = "(none)" if value is None else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 160 else text[:157] + "..."


# ---------------------------------------------------------------------------- the command


def add_command(commands: Any) -> None:
    parser = commands.add_parser(
        "replay", help="replay a captured call through the core and compare its decisions")
    parser.add_argument("captures", nargs="+", type=Path, help="capture files (.jsonl.gz)")
    parser.add_argument("--set", dest="changes", action="append", default=[],
                        metavar="SETTING=VALUE",
                        help="replay with an agent setting changed (VALUE is JSON or text)")
    parser.add_argument("--all", action="store_true", help="list every input, not only the "
                                                            "first divergence")


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        changes = parse_changes(args.changes)
    except ValueError as exc:
        print(f"callbridge: {exc}", file=err)
        return 2
    status = 0
    for path in args.captures:
        try:
            capture = read(path)
            result = replay(capture, changes=changes)
        except CaptureError as exc:
            print(f"callbridge: {exc}", file=err)
            return 2
        except (TypeError, ValueError) as exc:
            print(f"callbridge: {path}: cannot replay with {args.changes}: {exc}", file=err)
            return 2
        print(f"{path}", file=out)
        print_report(result, out, every_step=args.all)
        if result.first_divergence is not None:
            status = 1
    return status


def parse_changes(pairs: list[str]) -> dict[str, Any]:
    known = {f.name for f in dataclasses.fields(AgentProfile)}
    changes: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or name not in known:
            raise ValueError(f"--set {pair!r}: expected SETTING=VALUE with an agent setting")
        try:
            changes[name] = json.loads(raw)
        except ValueError:
            changes[name] = raw
    return changes
