"""`Tool`, one function the model may call, and the `@tool` decorator that makes it.

Owns turning a function into a tool: its name (checked against the Realtime pattern), its
description (the docstring's first paragraph unless given), its JSON schema, its timeout and its
filler line. Everything is checked when the tool is made, at import time for `@tool`, so a bad
tool stops start-up instead of failing during a call. `@tool` returns the function unchanged,
still callable and testable as written, with its `Tool` attached. No I/O. No clock.
"""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar, overload

from callbridge.tools.errors import ToolDefinitionError
from callbridge.tools.schema import Signature, function_name, parameters_schema, read_signature

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_TIMEOUT = 10.0
"""Seconds a tool may take unless it says otherwise (`timeout=None` means no limit)."""

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_ATTRIBUTE = "__callbridge_tool__"


@dataclass(frozen=True, slots=True, eq=False)
class Tool:
    """A function the model may call, with everything the Realtime declaration needs.

    `parameters` is the JSON schema of its arguments; `filler` is a line the agent may say while
    it runs; `is_async` tells whether `fn` is awaited or run in a worker thread.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    timeout: float | None
    filler: str | None
    fn: Callable[..., Any]
    is_async: bool
    signature: Signature = field(repr=False)

    @classmethod
    def from_function(
        cls,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        filler: str | None = None,
    ) -> Tool:
        """Make a tool of `fn`, or raise `ToolDefinitionError` saying what to change."""
        where = function_name(fn)
        if not callable(fn):
            raise ToolDefinitionError(f"{where}: a tool must be a function, not {type(fn)!r}")
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise ToolDefinitionError(f"{where}: a generator cannot be a tool; return a value")
        name = getattr(fn, "__name__", "") if name is None else name
        if not _NAME.match(name):
            raise ToolDefinitionError(
                f"{where}: tool name {name!r} must be 1 to 64 letters, digits, _ or -; "
                "pass name=..."
            )
        if timeout is not None and not timeout > 0:
            raise ToolDefinitionError(f"{where}: timeout must be positive seconds or None")
        signature = read_signature(fn)
        return cls(
            name=name,
            description=signature.summary if description is None else description,
            parameters=parameters_schema(signature),
            timeout=timeout,
            filler=filler or None,
            fn=fn,
            is_async=inspect.iscoroutinefunction(fn),
            signature=signature,
        )

    def definition(self) -> dict[str, Any]:
        """The entry for the Realtime session's `tools` list (a fresh copy, safe to change)."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": copy.deepcopy(self.parameters),
        }


@overload
def tool(fn: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    filler: str | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def tool(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    filler: str | None = None,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Mark a function as a tool, as `@tool` or `@tool(name=..., timeout=..., filler=...)`.

    The function is returned unchanged; its `Tool` is made now, so a definition error surfaces
    when the module is imported.
    """

    def mark(function: Callable[P, R]) -> Callable[P, R]:
        made = Tool.from_function(
            function, name=name, description=description, timeout=timeout, filler=filler
        )
        setattr(function, _ATTRIBUTE, made)
        return function

    return mark if fn is None else mark(fn)


def tool_of(obj: object) -> Tool | None:
    """The `Tool` that `@tool` attached to `obj`, if it is that very function; else None.

    A bound method or a `functools.wraps` wrapper sees its function's attribute too, but is not
    the function the tool calls, so it does not count.
    """
    if isinstance(obj, Tool):
        return obj
    made = getattr(obj, _ATTRIBUTE, None)
    return made if isinstance(made, Tool) and made.fn is obj else None


def as_tool(obj: Tool | Callable[..., Any]) -> Tool:
    """`obj` as a tool: a `Tool` as is, a decorated function's own tool, else a new default one."""
    if isinstance(obj, Tool):
        return obj
    return tool_of(obj) or Tool.from_function(obj)
