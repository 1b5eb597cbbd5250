"""`ToolRegistry`: the tools of a server, declared to the model and run for it.

Owns running one tool call end to end and turning every way it can go wrong into a
`ToolOutcome` the model can read: an unknown tool, arguments that do not fit (the function is
not called), a timeout, an exception, a result JSON cannot carry. `run()` never raises, with one
exception: if the task awaiting it is cancelled (the call ended), the tool is cancelled too and
`CancelledError` propagates. Async tools are awaited on the loop; sync tools run in a worker
thread so the call's audio never waits for them. Logs name the tool and what went wrong, never
arguments or results, which may be personal data. Reads the clock (`perf_counter`) for
`duration_ms` only; it can be passed in.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from callbridge.errors import ConfigError
from callbridge.tools.arguments import ArgumentsInvalid, bind_arguments
from callbridge.tools.context import ToolContext
from callbridge.tools.errors import ToolDefinitionError
from callbridge.tools.output import encode_output
from callbridge.tools.tool import Tool, as_tool

logger = logging.getLogger("callbridge.tools")

MAX_ERROR_MESSAGE = 300
"""Characters of an exception's message passed on to the model."""


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """How one tool call went.

    `output` is the text for the `function_call_output` item: the result, or on failure a JSON
    object `{"error": "..."}` phrased for the model. `error` repeats that sentence for the record
    (None when `ok`).
    """

    output: str
    ok: bool
    error: str | None
    duration_ms: int


class ToolRegistry:
    """The tools the model may call, by name, in registration order."""

    def __init__(
        self,
        tools: Iterable[Tool | Callable[..., Any]] = (),
        *,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._tools: dict[str, Tool] = {}
        self._clock = clock
        for item in tools:
            self.add(item)

    def add(self, fn: Tool | Callable[..., Any]) -> Tool:
        """Register a `Tool`, an `@tool` function or a plain function; return its `Tool`.

        Raises `ToolDefinitionError` if the function cannot be a tool or its name is taken.
        """
        made = as_tool(fn)
        if made.name in self._tools:
            raise ToolDefinitionError(f"two tools are named {made.name!r}; pass name=... to one")
        self._tools[made.name] = made
        return made

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def definitions(self, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The Realtime `tools` entries, in registration order; only `names` when given.

        Raises `ConfigError` if `names` mentions a tool that is not registered.
        """
        if names is None:
            return [made.definition() for made in self._tools.values()]
        wanted = set(names)
        unknown = sorted(wanted - self._tools.keys())
        if unknown:
            raise ConfigError(
                f"no tool named {', '.join(map(repr, unknown))}; "
                f"the tools are {', '.join(map(repr, self._tools)) or 'none'}"
            )
        return [made.definition() for made in self._tools.values() if made.name in wanted]

    async def run(self, name: str, arguments_json: str, context: ToolContext) -> ToolOutcome:
        """Call tool `name` with the model's `arguments` text. Never raises but `CancelledError`."""
        started = self._clock()
        made = self._tools.get(name)
        if made is None:
            logger.warning("the model called %r, which is not a tool", name)
            return self._failed(started, f"there is no tool named {name}")
        try:
            args, kwargs = bind_arguments(made.signature, arguments_json, context)
        except ArgumentsInvalid as exc:
            logger.info("tool %s not called: its arguments do not fit", name)
            return self._failed(started, f"{name} was not called: {exc}")
        task = asyncio.ensure_future(_call(made, args, kwargs))
        try:
            done, _ = await asyncio.wait({task}, timeout=made.timeout)
        except asyncio.CancelledError:
            _abandon(task)
            raise
        if not done:
            _abandon(task)
            logger.warning("tool %s did not answer within %g s", name, made.timeout)
            error = f"the tool {name} did not answer within {made.timeout:g} s"
            return self._failed(started, error)
        return self._finish(made, task, started)

    def _finish(self, made: Tool, task: asyncio.Future[Any], started: float) -> ToolOutcome:
        if task.cancelled():
            logger.warning("tool %s was cancelled", made.name)
            return self._failed(started, f"{made.name} failed: it was cancelled")
        exc = task.exception()
        if exc is not None:
            logger.warning("tool %s raised %s", made.name, type(exc).__name__, exc_info=exc)
            return self._failed(started, f"{made.name} failed: {_describe(exc)}")
        try:
            output = encode_output(task.result())
        except (TypeError, ValueError, RecursionError) as refused:
            logger.warning("tool %s returned a value JSON cannot carry", made.name)
            return self._failed(
                started, f"{made.name} returned a value that cannot be sent: {_describe(refused)}"
            )
        logger.debug("tool %s answered", made.name)
        return ToolOutcome(output, ok=True, error=None, duration_ms=self._since(started))

    def _failed(self, started: float, error: str) -> ToolOutcome:
        output = encode_output({"error": error})
        return ToolOutcome(output, ok=False, error=error, duration_ms=self._since(started))

    def _since(self, started: float) -> int:
        return round((self._clock() - started) * 1000)


async def _call(made: Tool, args: list[Any], kwargs: dict[str, Any]) -> Any:
    if made.is_async:
        result = await made.fn(*args, **kwargs)
    else:
        result = await asyncio.to_thread(made.fn, *args, **kwargs)
    if inspect.isawaitable(result):  # a sync wrapper around an async function
        result = await result
    return result


def _abandon(task: asyncio.Future[Any]) -> None:
    """Cancel a tool's task and stop caring: a worker thread cannot be stopped and runs on."""
    task.cancel()
    task.add_done_callback(_swallow)


def _swallow(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not report it at garbage collection


def _describe(exc: BaseException) -> str:
    message = " ".join(str(exc).split())
    if len(message) > MAX_ERROR_MESSAGE:
        message = message[: MAX_ERROR_MESSAGE - 1] + "…"
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
