"""Client delegation backends of the GPT-Live end-to-end tests (`backend = "module:function"`)."""

from __future__ import annotations

from callbridge.tools import ToolContext
from callbridge.tools.delegation import Delegation

ASKED: list[Delegation] = []  # every delegation the backend was given, in order


async def opening_hours(delegation: Delegation, context: ToolContext) -> str:
    ASKED.append(delegation)
    return f"We open at eight, and your call is {context.call_sid[-4:]}."


def broken(delegation: Delegation, context: ToolContext) -> str:
    ASKED.append(delegation)
    raise RuntimeError("the opening-hours service is down")
