"""Delegations of one fake GPT-Live session and the Responses backend's function-call rules.

Owns what the real service enforces about backend work: a `function_call_output` must answer a
call the backend made and not yet answered, calls of a failed response are discarded (an output
for one is refused), and `response.create` is refused with `function_call_outputs_required`
while any call is open anywhere in the session (the session-wide barrier) or while a backend
response is still running. Each refusal raises `Refused` with the API's error code and whether a
correct client could have run into it (`violation`). No I/O. No clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from callbridge.testing.fake_live_config import LiveReply, LiveToolCall


class Refused(ValueError):
    def __init__(self, code: str, message: str, *, param: str | None = None,
                 violation: bool = True) -> None:
        super().__init__(message)
        self.code, self.param, self.violation = code, param, violation


@dataclass
class Delegation:
    """One hand-off by the model. `target` is "responses" or "client".

    Responses: `calls` (call_id → the scripted call), `outputs` received (call_id → output),
    `discarded` after a backend failure, `continued` once a `response.create` resumed it.
    Client: `answers`, the commentary the client appended with this delegation's id.
    """

    id: str
    target: str
    reply: LiveReply
    offset_ms: int
    calls: dict[str, LiveToolCall] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    discarded: bool = False
    continued: bool = False
    answers: list[str] = field(default_factory=list)

    @property
    def open_calls(self) -> list[str]:
        if self.discarded:
            return []
        return [call_id for call_id in self.calls if call_id not in self.outputs]

    @property
    def answered(self) -> bool:
        """The client did its part: answered by commentary (client) or every call answered and
        continued (responses); a failed backend response needs nothing more."""
        if self.target == "client":
            return bool(self.answers)
        return self.discarded or not self.calls or (not self.open_calls and self.continued)


class Delegations:
    """Every delegation of a session, in order, and the backend's running responses."""

    def __init__(self) -> None:
        self.all: list[Delegation] = []
        self.running: set[str] = set()  # backend response ids between created and completed

    def find(self, delegation_id: str) -> Delegation | None:
        return next((d for d in self.all if d.id == delegation_id), None)

    def open_calls(self) -> list[str]:
        return [call_id for delegation in self.all for call_id in delegation.open_calls]

    def add_output(self, call_id: str, output: str) -> Delegation:
        """Record a `function_call_output`; raise `Refused` when the service would refuse it."""
        for delegation in self.all:
            if call_id not in delegation.calls:
                continue
            if delegation.discarded:
                message = f"Function call '{call_id}' was discarded with its failed response."
                raise Refused("invalid_value", message, param="item.call_id", violation=False)
            if call_id in delegation.outputs:
                message = f"Function call '{call_id}' already has an output."
                raise Refused("invalid_value", message, param="item.call_id")
            delegation.outputs[call_id] = output
            return delegation
        message = f"No function call with call_id '{call_id}' in this session."
        raise Refused("invalid_value", message, param="item.call_id")

    def continue_all(self) -> list[Delegation]:
        """Apply a `response.create`: the delegations it resumes, or raise `Refused`."""
        if self.running:
            message = "A backend response is still in progress; wait for it to complete."
            raise Refused("conversation_already_has_active_response", message)
        if self.open_calls():
            message = "Submit the pending function call outputs before response.create."
            raise Refused("function_call_outputs_required", message)
        resumed = [d for d in self.all if d.calls and not d.discarded and not d.continued]
        for delegation in resumed:
            delegation.continued = True
        return resumed
