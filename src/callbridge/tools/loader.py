"""`load_tools_module`: the tools of a user's module, found by import.

Owns importing a module named in the configuration and collecting every `@tool` function (or
`Tool`) it holds, in definition order, re-exports included. Any failure becomes a one-line
`ToolLoadError` naming the module; a `ToolDefinitionError` raised while importing passes through
unchanged, since it already names the function and parameter at fault.
"""

from __future__ import annotations

import importlib

from callbridge.tools.errors import ToolDefinitionError, ToolLoadError
from callbridge.tools.tool import Tool, tool_of


def load_tools_module(module_name: str) -> list[Tool]:
    """Import `module_name` ("package.module") and return its tools in definition order."""
    try:
        module = importlib.import_module(module_name)
    except ToolDefinitionError:
        raise
    except Exception as exc:  # whatever the module's own code raises while importing
        raise ToolLoadError(
            f"cannot import tools module {module_name!r}: {_one_line(exc)}"
        ) from exc
    tools: list[Tool] = []
    for value in vars(module).values():
        found = tool_of(value)
        if found is not None and all(found is not known for known in tools):
            tools.append(found)
    if not tools:
        raise ToolLoadError(
            f"tools module {module_name!r} has no tools; decorate its functions with "
            "@callbridge.tools.tool"
        )
    return tools


def _one_line(exc: BaseException) -> str:
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
