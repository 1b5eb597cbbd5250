"""Scenario files: what the caller does, what the fake model answers, and what must hold.

Owns reading one YAML scenario into plain frozen values, and every mistake in it as a one-line
`ConfigError` naming the file and the entry. No I/O beyond reading the file; no clock.

    name: books a table
    agent: host                  # an agent of the agent file (default: its default agent)
    agent_file: agent.toml       # relative to this file (default: CALLBRIDGE_AGENT_FILE)
    turns:                       # the caller's script
      - say: I'd like a table for two on Friday.
      - say: Actually, make it three.
        interrupt_after_s: 1.0   # cut into the agent's reply after 1 s of its audio
      - silence_s: 2
      - press: "12#"
      - wav: answer.wav
      - hang_up: true
    replies:                     # the local fake model's answers, in order (no OPENAI_API_KEY)
      - tool: book_table
        arguments: {party_size: 2, day: friday}
      - say: You're booked for Friday.
    expect:
      - tool_called: {name: book_table, arguments: {party_size: 2}, match: subset}
      - transcript_contains: booked
      - max_turn_latency_s: 2.5
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from callbridge.errors import ConfigError

TurnKind = Literal["say", "wav", "silence", "press", "hang_up"]
Match = Literal["exact", "subset", "regex"]
Role = Literal["agent", "caller", "any"]
MATCHES: tuple[Match, ...] = ("exact", "subset", "regex")
ROLES: tuple[Role, ...] = ("agent", "caller", "any")
DTMF = frozenset("0123456789*#")
_KEYS = frozenset({"name", "agent", "agent_file", "turns", "replies", "expect", "judge",
                   "caller", "analysis"})


@dataclass(frozen=True)
class Turn:
    """One step of the caller's script."""

    kind: TurnKind
    text: str = ""  # say: the words; press: the digits
    wav: Path | None = None
    seconds: float = 0.0  # silence
    interrupt_after_s: float | None = None  # say/wav: start this long into the agent's audio


@dataclass(frozen=True)
class ScriptedReply:
    """One answer of the local fake model: words, or a tool call."""

    say: str | None = None
    tool: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    delay_ms: float = 0.0


@dataclass(frozen=True)
class Expectation:
    """One thing that must hold; `kind` names it, `value` is its argument as written."""

    kind: str
    value: Any

    def describe(self) -> str:
        if isinstance(self.value, bool) and self.value:
            return self.kind
        return f"{self.kind}: {_short(self.value)}"


@dataclass(frozen=True)
class Judge:
    """A rubric a text model scores from 0 to 1; the run passes at `threshold` or above."""

    rubric: str
    threshold: float = 0.7


@dataclass(frozen=True)
class SimulatedCaller:
    """A caller played by a text model instead of a script."""

    persona: str
    goal: str
    max_turns: int = 6


@dataclass(frozen=True)
class Scenario:
    name: str
    path: Path
    agent: str | None
    agent_file: Path | None
    turns: tuple[Turn, ...]
    replies: tuple[ScriptedReply, ...]
    expect: tuple[Expectation, ...]
    judge: Judge | None = None
    caller: SimulatedCaller | None = None
    analysis: dict[str, Any] | None = None  # the fake analysis model's answer (custom fields)

    @property
    def needs_model(self) -> bool:
        """A judge or a simulated caller needs a real text model (OPENAI_API_KEY)."""
        return self.judge is not None or self.caller is not None

    @property
    def wants_analysis(self) -> bool:
        return any(e.kind == "analysis" for e in self.expect)


EXPECTATIONS = ("tool_called", "tool_not_called", "transferred_to", "ended_by_agent",
                "transcript_contains", "transcript_lacks", "transcript_matches",
                "max_turn_latency_s", "max_silence_s", "no_truncate_errors", "analysis")


def load_scenario(path: Path) -> Scenario:
    """The scenario in `path`. Raises ConfigError naming the file and what is wrong."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"scenario {path}: cannot read it ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"scenario {path}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    where = f"scenario {path}"
    data = _mapping(data, where)
    unknown = sorted(set(map(str, data)) - _KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(_KEYS))}")
    base = path.parent
    agent_file = data.get("agent_file")
    caller = _caller(data.get("caller"), where)
    turns = tuple(_turn(t, base, f"{where}: turns[{i}]")
                  for i, t in enumerate(_list(data.get("turns"), f"{where}: turns")))
    if not turns and caller is None:
        raise ConfigError(f"{where}: needs turns (the caller's script) or caller (a simulated "
                          "caller)")
    analysis = data.get("analysis")
    if analysis is not None:
        analysis = dict(_mapping(analysis, f"{where}: analysis"))
    return Scenario(
        name=str(data.get("name") or path.stem),
        path=path,
        agent=_optional_text(data.get("agent"), f"{where}: agent"),
        agent_file=(base / _text(agent_file, f"{where}: agent_file")) if agent_file else None,
        turns=turns,
        replies=tuple(_reply(r, f"{where}: replies[{i}]")
                      for i, r in enumerate(_list(data.get("replies"), f"{where}: replies"))),
        expect=tuple(_expectation(e, f"{where}: expect[{i}]")
                     for i, e in enumerate(_list(data.get("expect"), f"{where}: expect"))),
        judge=_judge(data.get("judge"), where),
        caller=caller,
        analysis=analysis,
    )


def _turn(raw: object, base: Path, where: str) -> Turn:
    if raw == "hang_up":
        return Turn("hang_up")
    entry = _mapping(raw, where)
    interrupt = entry.get("interrupt_after_s")
    if interrupt is not None:
        interrupt = _seconds(interrupt, f"{where}: interrupt_after_s")
    kinds = [k for k in ("say", "wav", "silence_s", "press", "hang_up") if k in entry]
    if len(kinds) != 1:
        raise ConfigError(f"{where}: each turn is one of say, wav, silence_s, press, hang_up "
                          f"(got {', '.join(map(str, entry)) or 'nothing'})")
    extra = set(entry) - {kinds[0], "interrupt_after_s"}
    if extra or (interrupt is not None and kinds[0] not in ("say", "wav")):
        raise ConfigError(f"{where}: unexpected {', '.join(sorted(map(str, extra))) or 'key'}; "
                          "interrupt_after_s goes with say or wav")
    kind = kinds[0]
    value = entry[kind]
    if kind == "say":
        return Turn("say", text=_text(value, f"{where}: say"), interrupt_after_s=interrupt)
    if kind == "wav":
        wav = base / _text(value, f"{where}: wav")
        if not wav.is_file():
            raise ConfigError(f"{where}: wav {wav}: no such file")
        return Turn("wav", wav=wav, interrupt_after_s=interrupt)
    if kind == "silence_s":
        return Turn("silence", seconds=_seconds(value, f"{where}: silence_s"))
    if kind == "press":
        digits = str(value)
        if not digits or set(digits) - DTMF:
            raise ConfigError(f"{where}: press takes keypad digits 0-9, * and #, not {digits!r}")
        return Turn("press", text=digits)
    if value is not True:
        raise ConfigError(f"{where}: hang_up takes true")
    return Turn("hang_up")


def _reply(raw: object, where: str) -> ScriptedReply:
    if isinstance(raw, str):
        return ScriptedReply(say=raw)
    entry = _mapping(raw, where)
    extra = set(entry) - {"say", "tool", "arguments", "delay_ms"}
    if extra:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(map(str, extra)))}; "
                          "a reply is say: TEXT or tool: NAME with arguments:")
    if ("say" in entry) == ("tool" in entry):
        raise ConfigError(f"{where}: a reply is either say: TEXT or tool: NAME")
    delay = _seconds(entry.get("delay_ms", 0), f"{where}: delay_ms")
    if "say" in entry:
        return ScriptedReply(say=_text(entry["say"], f"{where}: say"), delay_ms=delay)
    arguments = dict(_mapping(entry.get("arguments", {}), f"{where}: arguments"))
    return ScriptedReply(tool=_text(entry["tool"], f"{where}: tool"), arguments=arguments,
                         delay_ms=delay)


def _expectation(raw: object, where: str) -> Expectation:
    entry = _mapping(raw, where)
    if len(entry) != 1:
        raise ConfigError(f"{where}: one expectation per entry, e.g. - transcript_contains: …")
    [(kind, value)] = entry.items()
    kind = str(kind)
    if kind not in EXPECTATIONS:
        raise ConfigError(f"{where}: unknown expectation {kind!r}; known: "
                          f"{', '.join(EXPECTATIONS)}")
    where = f"{where}: {kind}"
    if kind in ("tool_called", "tool_not_called"):
        value = _tool_expectation(value, where, allow_arguments=kind == "tool_called")
    elif kind in ("transcript_contains", "transcript_lacks", "transcript_matches"):
        value = _phrase(value, where, regex=kind == "transcript_matches")
    elif kind in ("max_turn_latency_s", "max_silence_s"):
        value = _seconds(value, where)
    elif kind in ("ended_by_agent", "no_truncate_errors"):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: takes true or false")
    elif kind == "transferred_to":
        value = _text(value, where)
    else:  # analysis
        value = dict(_mapping(value, where))
        for name, wanted in value.items():
            if isinstance(wanted, str):
                _compile(wanted, f"{where}.{name}")
    return Expectation(kind, value)


def _tool_expectation(value: object, where: str, *, allow_arguments: bool) -> dict[str, Any]:
    if isinstance(value, str):
        return {"name": value, "arguments": None, "match": "subset"}
    entry = dict(_mapping(value, where))
    allowed = {"name", "arguments", "match"} if allow_arguments else {"name"}
    extra = set(entry) - allowed
    if extra or "name" not in entry:
        raise ConfigError(f"{where}: takes a tool name or {{{', '.join(sorted(allowed))}}}")
    match = entry.get("match", "subset")
    if match not in MATCHES:
        raise ConfigError(f"{where}: match must be one of {', '.join(MATCHES)}, not {match!r}")
    arguments = entry.get("arguments")
    if arguments is not None:
        arguments = dict(_mapping(arguments, f"{where}: arguments"))
        if match == "regex":
            for name, pattern in arguments.items():
                _compile(_text(pattern, f"{where}: arguments.{name}"), f"{where}.{name}")
    return {"name": _text(entry["name"], f"{where}: name"), "arguments": arguments,
            "match": match}


def _phrase(value: object, where: str, *, regex: bool) -> dict[str, str]:
    if isinstance(value, str):
        entry: Mapping[str, Any] = {"text": value}
    else:
        entry = _mapping(value, where)
    text = _text(entry.get("text"), f"{where}: text")
    role = entry.get("role", "any")
    if role not in ROLES or set(entry) - {"text", "role"}:
        raise ConfigError(f"{where}: takes text, or {{text, role}} with role one of "
                          f"{', '.join(ROLES)}")
    if regex:
        _compile(text, where)
    return {"text": text, "role": str(role)}


def _judge(raw: object, where: str) -> Judge | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return Judge(rubric=raw)
    entry = _mapping(raw, f"{where}: judge")
    threshold = entry.get("threshold", 0.7)
    if not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
        raise ConfigError(f"{where}: judge threshold must be a number from 0 to 1")
    return Judge(_text(entry.get("rubric"), f"{where}: judge rubric"), float(threshold))


def _caller(raw: object, where: str) -> SimulatedCaller | None:
    if raw is None:
        return None
    entry = _mapping(raw, f"{where}: caller")
    turns = entry.get("max_turns", 6)
    if not isinstance(turns, int) or isinstance(turns, bool) or not 1 <= turns <= 50:
        raise ConfigError(f"{where}: caller max_turns must be a whole number from 1 to 50")
    return SimulatedCaller(_text(entry.get("persona"), f"{where}: caller persona"),
                           _text(entry.get("goal"), f"{where}: caller goal"), turns)


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping (key: value), not {_short(value)}")
    return value


def _list(value: object, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list (- item), not {_short(value)}")
    return value


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: expected text, not {_short(value)}")
    return value


def _optional_text(value: object, where: str) -> str | None:
    return None if value is None else _text(value, where)


def _seconds(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            math.isfinite(value) and value >= 0):
        raise ConfigError(f"{where}: expected a number of seconds ≥ 0, not {_short(value)}")
    return float(value)


def _compile(pattern: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"{where}: not a valid regular expression: {exc}") from None


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
