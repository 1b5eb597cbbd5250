"""The clinic agent's tools (`tools_module = "clinic_tools"` in agent.toml)."""

from __future__ import annotations

from typing import Literal

from callbridge.tools import tool

Day = Literal["monday", "tuesday", "wednesday", "thursday", "friday"]


@tool(filler="Let me check the calendar.")
def book_appointment(day: Day, name: str) -> dict[str, str]:
    """Book a check-up for the caller.

    Args:
        day: The weekday the caller wants.
        name: The caller's full name.
    """
    return {"booked": day, "time": "10:30", "for": name}
