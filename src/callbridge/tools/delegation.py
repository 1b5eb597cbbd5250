"""Client delegation for GPT-Live agents: the user's Python backend, which answers each hand-off.

An agent with `live_delegation = "client"` names its backend, `backend = "module:function"`.
Whenever the voice model hands a question over, the backend is called with a `Delegation` — its
id and the conversation so far — and the call's `ToolContext`, and returns the text the agent
says next (sent as commentary tied to the delegation). It may be a coroutine function or a plain
function (run in a worker thread, so it never blocks the call's audio).

    async def answer(delegation: Delegation, context: ToolContext) -> str:
        if "opening hours" in delegation.question:
            return "We are open from nine to five, Monday to Friday."
        return "I'm not sure; let me have someone call you back."

The backend runs in the tool runner as a tool of its own (`backend_tool`): the same timeout,
error handling, records and metrics as any tool. When it fails or times out, the agent is told
to apologise instead (`core.live_model`), so every delegation gets an answer.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from callbridge.core.live_config import backend_tool_name
from callbridge.tools.context import ToolContext
from callbridge.tools.errors import ToolLoadError
from callbridge.tools.tool import DEFAULT_TIMEOUT, Tool

_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


@dataclass(frozen=True, slots=True)
class Turn:
    """One turn of the conversation as the voice model transcribed it."""

    role: Literal["user", "assistant"]
    text: str


@dataclass(frozen=True, slots=True)
class Delegation:
    """One hand-off from the voice model: answer it with the text the agent should say."""

    id: str
    conversation: tuple[Turn, ...]

    @property
    def question(self) -> str:
        """What the caller said last (empty if the caller has not spoken)."""
        return next((t.text for t in reversed(self.conversation) if t.role == "user"), "")


Backend = Callable[[Delegation, ToolContext], Any]


def load_backend(spec: str) -> Backend:
    """The function `spec` ("package.module:function") names; `ToolLoadError` says what is
    wrong with it."""
    if not _SPEC.match(spec):
        raise ToolLoadError(f"backend {spec!r} must name a function as 'package.module:function'")
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any error importing user code is a start-up error, said plainly
        raise ToolLoadError(f"backend {spec!r}: cannot import {module_name!r}: "
                            f"{type(exc).__name__}: {exc}") from exc
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ToolLoadError(f"backend {spec!r}: {module_name} has no function {attribute!r}")
    try:
        inspect.signature(function).bind(None, None)
    except (TypeError, ValueError) as exc:
        raise ToolLoadError(f"backend {spec!r} must take (delegation, context): {exc}") from exc
    return function  # type: ignore[no-any-return]


def backend_tool(spec: str, *, timeout: float | None = DEFAULT_TIMEOUT) -> Tool:
    """The backend `spec` names, as the tool the live model's client delegations call."""
    backend = load_backend(spec)
    is_async = inspect.iscoroutinefunction(backend)

    async def delegate(delegation_id: str, conversation: list[Turn], context: ToolContext,
                       ) -> str:
        delegation = Delegation(delegation_id, tuple(conversation))
        if is_async:
            answer = await backend(delegation, context)
        else:
            answer = await asyncio.to_thread(backend, delegation, context)
        if not isinstance(answer, str) or not answer.strip():
            raise TypeError(f"the backend must return the text to say, not {answer!r}")
        return answer.strip()

    return Tool.from_function(delegate, name=backend_tool_name(spec), timeout=timeout,
                              description=f"The client delegation backend {spec}.")
