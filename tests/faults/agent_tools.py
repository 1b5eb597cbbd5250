"""The tool of the fault suite's agent (loaded via `tools_module`): a 1.5 s backend call."""

from __future__ import annotations

import asyncio

from callbridge.tools import tool


@tool(filler="One moment while I check.", timeout=5.0)
async def slow_lookup(order_id: str) -> dict[str, str]:
    """Look up an order by its number.

    Args:
        order_id: The order number the caller reads out, e.g. "A-17".
    """
    await asyncio.sleep(1.5)
    return {"order_id": order_id, "status": "ships tomorrow"}
