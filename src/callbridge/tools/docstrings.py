"""Reading a tool's descriptions out of its docstring (Google style).

The first paragraph is the tool's description; an `Args:` (or `Arguments:`, `Parameters:`) section
gives one description per parameter, continuation lines indented under it. Anything else in the
docstring (`Returns:`, `Raises:`, examples) is for people, not for the model. No I/O. No clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Params)\s*:\s*$")
_ANY_SECTION = re.compile(
    r"^\s*(Args|Arguments|Parameters|Params|Returns?|Yields?|Raises|Attributes|Examples?|Notes?"
    r"|See Also|Warnings?|Todo|References)\s*:\s*$"
)
_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


@dataclass(frozen=True, slots=True)
class Docstring:
    """The parts of a docstring the model sees."""

    summary: str = ""
    params: dict[str, str] = field(default_factory=dict)


def parse_docstring(doc: str | None) -> Docstring:
    """Split a cleaned docstring (`inspect.getdoc`) into summary and parameter descriptions."""
    if not doc:
        return Docstring()
    lines = doc.strip().splitlines()
    return Docstring(summary=_summary(lines), params=_args_section(lines))


def _summary(lines: list[str]) -> str:
    """The first paragraph, joined into one line; it stops early at a section header."""
    words: list[str] = []
    for line in lines:
        if not line.strip() or _ANY_SECTION.match(line):
            break
        words.append(line.strip())
    return " ".join(words)


def _args_section(lines: list[str]) -> dict[str, str]:
    start = next((i for i, line in enumerate(lines) if _SECTION.match(line)), None)
    if start is None:
        return {}
    header_indent = _indent(lines[start])
    params: dict[str, list[str]] = {}
    entry_indent: int | None = None
    current: list[str] | None = None
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        indent = _indent(line)
        if indent <= header_indent:
            break  # the next section
        if entry_indent is None:
            entry_indent = indent
        match = _ENTRY.match(line.strip())
        if indent == entry_indent and match:
            current = params.setdefault(match.group(1), [])
            current.append(match.group(2).strip())
        elif current is not None:
            current.append(line.strip())
    return {name: " ".join(part for part in parts if part) for name, parts in params.items()}


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())
