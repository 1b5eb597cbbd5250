"""Function tools: users' Python functions, declared to the Realtime model and run for it.

    @tool(timeout=5.0, filler="One moment while I look that up.")
    async def lookup_order(order_id: str, include_items: bool = False) -> dict[str, Any]:
        \"\"\"Look up an order by its number.

        Args:
            order_id: The order number the caller reads out, e.g. "A-1234".
            include_items: Whether to list the items in the order.
        \"\"\"

    registry = ToolRegistry([lookup_order, *load_tools_module("myapp.tools")])
    session["tools"] = registry.definitions()
    outcome = await registry.run(event.name, event.arguments, context)   # never raises

The schema comes from the signature, type hints and docstring (`schema.py`, `shapes.py`,
`docstrings.py`); arguments are checked before the function is called (`arguments.py`); results
become the `function_call_output` text (`output.py`). Nothing here knows about sockets or calls
beyond `ToolContext`.
"""

from callbridge.tools.context import ToolContext
from callbridge.tools.errors import ToolDefinitionError, ToolLoadError
from callbridge.tools.loader import load_tools_module
from callbridge.tools.registry import ToolOutcome, ToolRegistry
from callbridge.tools.tool import DEFAULT_TIMEOUT, Tool, as_tool, tool

__all__ = [
    "DEFAULT_TIMEOUT",
    "Tool",
    "ToolContext",
    "ToolDefinitionError",
    "ToolLoadError",
    "ToolOutcome",
    "ToolRegistry",
    "as_tool",
    "load_tools_module",
    "tool",
]
