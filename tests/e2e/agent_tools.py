"""Tools of the agent used by the call-control end-to-end tests (loaded via `tools_module`)."""

from __future__ import annotations

import asyncio

from callbridge.tools import ToolContext, tool


@tool(filler="One moment.", timeout=5.0)
async def lookup_order(order_id: str, context: ToolContext) -> dict[str, str]:
    """Look up an order by its number.

    Args:
        order_id: The order number the caller reads out, e.g. "A-17".
    """
    await asyncio.sleep(3.0)  # a slow backend: a holding line, then the comfort tone
    return {"order_id": order_id, "status": "ships tomorrow", "caller": context.from_number}


@tool
def add(a: int, b: int) -> int:
    """Add two whole numbers."""
    return a + b


@tool
def explode() -> str:
    """A tool whose backend is broken."""
    raise RuntimeError("the inventory service is down")
