"""`ToolContext`: what a tool may know about the call it serves.

A tool function receives it by declaring a parameter annotated `ToolContext` (under any name);
that parameter never appears in the schema the model sees. No I/O. No clock.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ToolContext:
    """The call a tool runs for: Twilio's call SID, both numbers and the agent's name."""

    call_sid: str
    from_number: str
    to_number: str
    agent: str
