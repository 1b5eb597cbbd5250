"""Judging one run of a scenario: what happened on the call, and which expectations it breaks.

Owns `Observed` (the evidence a run collected: transcript, tool calls, REST call control, timing,
truncate errors, analysis, the judge's score) and `check()`, which returns one `Failure` per
broken expectation with the evidence that breaks it, worded for a person reading a table.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from callbridge.evals.scenario import Expectation, Scenario


@dataclass(frozen=True)
class ToolUse:
    name: str
    arguments: dict[str, Any]
    result: str | None = None


@dataclass
class Observed:
    """Everything one run of a scenario saw, from the caller, the call record and the REST API."""

    call_sid: str = ""
    transcript: list[tuple[str, str]] = field(default_factory=list)  # (role, words)
    tools: list[ToolUse] = field(default_factory=list)
    transfer_to: str | None = None  # the <Number>/<Sip> the call was redirected to
    transfer_names: tuple[str, ...] = ()  # the agent's names for that target
    hung_up_by_agent: bool = False
    end_reason: str | None = None
    turn_latencies: list[float] = field(default_factory=list)
    longest_silence_s: float = 0.0
    truncate_errors: int = 0
    analysis: dict[str, Any] | None = None
    analysis_error: str | None = None
    judge_score: float | None = None
    judge_reason: str = ""
    problems: list[str] = field(default_factory=list)  # the run itself went wrong

    def text_of(self, role: str) -> str:
        return "\n".join(words for who, words in self.transcript if role in ("any", who))

    def transcript_lines(self) -> list[str]:
        return [f"{who}: {words}" for who, words in self.transcript]


@dataclass(frozen=True)
class Failure:
    """A broken expectation (or a run that went wrong) and what was seen instead."""

    expectation: str
    evidence: str


def check(scenario: Scenario, seen: Observed) -> list[Failure]:
    """Every expectation of `scenario` that `seen` breaks, in the scenario's order."""
    failures = [Failure("the call ran", problem) for problem in seen.problems]
    for expectation in scenario.expect:
        evidence = _broken(expectation, seen)
        if evidence is not None:
            failures.append(Failure(expectation.describe(), evidence))
    if scenario.judge is not None:
        if seen.judge_score is None:
            failures.append(Failure("judge", seen.judge_reason or "the judge gave no score"))
        elif seen.judge_score < scenario.judge.threshold:
            failures.append(Failure(
                f"judge ≥ {scenario.judge.threshold:g}",
                f"scored {seen.judge_score:.2f}: {seen.judge_reason}"))
    return failures


def _broken(expectation: Expectation, seen: Observed) -> str | None:
    kind, value = expectation.kind, expectation.value
    if kind == "tool_called":
        return _tool_called(value, seen.tools)
    if kind == "tool_not_called":
        calls = [t for t in seen.tools if t.name == value["name"]]
        return f"called {len(calls)}×: {_calls(calls)}" if calls else None
    if kind == "transferred_to":
        if seen.transfer_to is None:
            return f"no transfer (the call ended: {seen.end_reason or 'unknown'})"
        if value in (seen.transfer_to, *seen.transfer_names):
            return None
        return f"transferred to {seen.transfer_to}"
    if kind == "ended_by_agent":
        if seen.hung_up_by_agent == value:
            return None
        return (f"the agent hung up ({seen.end_reason})" if seen.hung_up_by_agent
                else f"the agent did not hang up (the call ended: {seen.end_reason or 'unknown'})")
    if kind in ("transcript_contains", "transcript_lacks", "transcript_matches"):
        return _transcript(kind, value, seen)
    if kind == "max_turn_latency_s":
        if not seen.turn_latencies:
            return "no agent reply was heard after the caller spoke"
        worst = max(seen.turn_latencies)
        if worst <= value:
            return None
        turn = seen.turn_latencies.index(worst) + 1
        return f"turn {turn} took {worst:.2f} s (all: {_seconds(seen.turn_latencies)})"
    if kind == "max_silence_s":
        if seen.longest_silence_s <= value:
            return None
        return f"the caller heard {seen.longest_silence_s:.2f} s of dead air"
    if kind == "no_truncate_errors":
        if (seen.truncate_errors == 0) == value:
            return None
        return f"{seen.truncate_errors} truncate error(s)"
    return _analysis(value, seen)


def _tool_called(value: dict[str, Any], tools: list[ToolUse]) -> str | None:
    calls = [t for t in tools if t.name == value["name"]]
    if not calls:
        named = ", ".join(sorted({t.name for t in tools})) or "none"
        return f"{value['name']} was not called (tools called: {named})"
    wanted = value["arguments"]
    if wanted is None:
        return None
    match = value["match"]
    if any(_arguments_match(call.arguments, wanted, match) for call in calls):
        return None
    return f"called with {_calls(calls)}; wanted {match} {wanted}"


def _arguments_match(actual: dict[str, Any], wanted: dict[str, Any], match: str) -> bool:
    if match == "exact":
        return actual == wanted
    if match == "subset":
        return all(k in actual and actual[k] == v for k, v in wanted.items())
    return all(k in actual and re.search(str(pattern), _as_text(actual[k])) is not None
               for k, pattern in wanted.items())


def _transcript(kind: str, value: dict[str, str], seen: Observed) -> str | None:
    text, role = value["text"], value["role"]
    said = seen.text_of(role)
    if kind == "transcript_matches":
        found = re.search(text, said) is not None
    else:
        found = text.casefold() in said.casefold()
    if found == (kind != "transcript_lacks"):
        return None
    lines = [line for line in seen.transcript_lines()
             if role == "any" or line.startswith(role)]
    shown = " | ".join(lines[-6:]) or "(nothing was said)"
    return f"{'said' if found else 'not said'}; transcript: {shown}"


def _analysis(wanted: dict[str, Any], seen: Observed) -> str | None:
    if seen.analysis is None:
        return f"no analysis ({seen.analysis_error or 'not run'})"
    wrong = []
    for name, expected in wanted.items():
        actual = seen.analysis.get(name, seen.analysis.get("custom", {}).get(name))
        if actual is None:
            wrong.append(f"{name} missing")
        elif isinstance(expected, str):
            if re.search(expected, _as_text(actual)) is None:
                wrong.append(f"{name}={actual!r}")
        elif isinstance(expected, dict) and {"min", "max"} & set(expected):
            number = actual if isinstance(actual, int | float) else None
            low, high = expected.get("min"), expected.get("max")
            if number is None or (low is not None and number < low) or (
                    high is not None and number > high):
                wrong.append(f"{name}={actual!r}")
        elif actual != expected:
            wrong.append(f"{name}={actual!r}")
    return "; ".join(wrong) if wrong else None


def _as_text(value: object) -> str:
    return value if isinstance(value, str) else repr(value)


def _calls(calls: list[ToolUse]) -> str:
    return "; ".join(f"{c.name}({c.arguments})" for c in calls[:3])


def _seconds(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)
