"""What an agent means to GPT-Live: the `session.start` configuration, the backend's function
tools, and the conversation restored into a replacing session.

A Live session's configuration is fixed by its first message, so everything the call may need is
decided here at once: μ-law at 8 kHz both ways (Twilio's own format, no transcoding), the voice,
the instructions with the policy lines the prompting guide asks for (backchannel, interruption,
delegation), and the delegation: `responses` (a hosted Responses model runs the agent's tools,
whose calls come back to us) or `client` (every delegation comes to us and is answered with
commentary). A replacing session gets the conversation as text `input` within the server's limits
(≤128 messages, ≤8,192 tokens): the newest turns that fit, tool traffic narrated as developer
notes, and a note that the call is already under way so the agent does not greet again. Older
turns are dropped, not summarised: a summary would need a model call on the reconnect path.
No I/O. No clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from callbridge.core.agent import DEFAULT_BACKEND_MODEL, AgentProfile, LiveOptions

__all__ = ["DEFAULT_BACKEND_MODEL", "LiveOptions", "is_live_model", "session_config"]

LIVE_MODEL_PREFIX = "gpt-live"
PCMU_8K = {"type": "audio/pcmu", "rate": 8000}
MAX_INPUT_MESSAGES = 128
# ≤8,192 rendered tokens; at ~4 characters a token, 24,000 characters keep a safe margin.
MAX_INPUT_CHARS = 24_000

INTERRUPTION_POLICY = (
    "Interruption policy: Stop speaking when the caller interrupts. Listen to what they say.")
BACKCHANNEL_POLICY = (
    "Backchannel policy: Use brief acknowledgements while the caller talks; do not interrupt.")
ALREADY_IN_PROGRESS = (
    "The call is already in progress and the caller has been greeted. The conversation so far "
    "is above. Continue from where it stopped; do not greet the caller again.")


def backend_tool_name(backend: str) -> str:
    """The tool a client delegation backend ("module:function") runs as: `delegate_` and the
    function's name."""
    return "delegate_" + backend.rpartition(":")[2][:55]


def is_live_model(model: str) -> bool:
    """Whether `model` is served by GPT-Live (`/v1/live/sessions`) rather than Realtime."""
    return model.startswith(LIVE_MODEL_PREFIX)


def session_config(profile: AgentProfile, options: LiveOptions,
                   restored: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The `session` of the `session.start` that opens a Live session for this agent;
    `restored` are Realtime-shaped conversation items to carry into a replacing session."""
    session: dict[str, Any] = {
        "model": profile.model,
        "instructions": live_instructions(profile, options),
        "audio": {"format": dict(PCMU_8K), "output": {"voice": profile.voice}},
        "delegation": delegation_config(profile, options),
        "store": False,
    }
    if restored:
        session["input"] = restore_input(restored)
    return session


def live_instructions(profile: AgentProfile, options: LiveOptions) -> str:
    """The agent's instructions plus the policy lines that steer a full-duplex model."""
    lines = [profile.instructions.strip(), BACKCHANNEL_POLICY, INTERRUPTION_POLICY]
    tools = function_tools(profile)
    if options.delegation == "responses" and tools:
        lines += ["Delegation policy:", "Backend tools:"]
        lines += [f"- {tool['name']}: {tool.get('description', '').strip()}" for tool in tools]
        lines += ["Delegate to the backend when the request needs a backend tool or careful "
                  "reasoning. Delegate before giving an answer that depends on backend work. "
                  "Do not guess the result while waiting."]
    elif options.delegation == "client":
        lines += ["Delegation policy: delegate questions you cannot answer from the "
                  "conversation. Do not guess the result while waiting."]
    return "\n".join(line for line in lines if line)


def delegation_config(profile: AgentProfile, options: LiveOptions) -> dict[str, Any]:
    """The `delegation` object: where the voice model hands reasoning and tools."""
    if options.delegation == "client":
        return {"type": "client", "acknowledgement_delay_ms": options.acknowledgement_delay_ms}
    responses: dict[str, Any] = {"model": options.backend_model,
                                 "instructions": backend_instructions(profile, options)}
    tools = function_tools(profile)
    if tools:
        responses["tools"] = tools
        responses["tool_choice"] = "auto"
    return {"type": "responses", "acknowledgement_delay_ms": options.acknowledgement_delay_ms,
            "responses": responses}


def backend_instructions(profile: AgentProfile, options: LiveOptions) -> str:
    if options.backend_instructions:
        return options.backend_instructions
    return (f"You are the backend for the phone agent {profile.name!r}. You do not speak to the "
            "caller: your text is given to the voice model, which says it in its own words. "
            "Use the tools to act and to look things up; answer briefly and factually.")


def function_tools(profile: AgentProfile) -> list[dict[str, Any]]:
    """The agent's tools (its own and the enabled built-ins) as Responses function tools, strict
    where the schema already meets Structured Outputs' rules (strict never changes meaning)."""
    tools = []
    for tool in profile.all_tools():
        parameters = tool.get("parameters") or {"type": "object", "properties": {}}
        definition: dict[str, Any] = {"type": "function", "name": tool["name"],
                                      "parameters": parameters,
                                      "strict": is_strict_schema(parameters)}
        if tool.get("description"):
            definition["description"] = tool["description"]
        tools.append(definition)
    return tools


def is_strict_schema(schema: object) -> bool:
    """Whether every object in `schema` lists all its properties as required and allows no
    others — the rule strict function calling enforces."""
    if not isinstance(schema, dict):
        return True
    if schema.get("type") == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        if schema.get("additionalProperties") is not False:
            return False
        if set(schema.get("required") or ()) != set(properties):
            return False
    children = [*(schema.get("properties") or {}).values(), *(schema.get("$defs") or {}).values(),
                *(schema.get("anyOf") or ()), schema.get("items")]
    return all(is_strict_schema(child) for child in children)


def restore_input(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Realtime conversation items as Live `input` (text only, one part per message), newest
    kept first within the limits, closed by a note that the call is under way."""
    messages: list[dict[str, Any]] = []
    budget = MAX_INPUT_CHARS - len(ALREADY_IN_PROGRESS)
    for item in reversed(items):
        message = _as_message(item)
        if message is None:
            continue
        size = len(message["content"][0]["text"])
        if len(messages) >= MAX_INPUT_MESSAGES - 1 or size > budget:
            break
        messages.append(message)
        budget -= size
    messages.reverse()
    return [*messages, _text_message("developer", ALREADY_IN_PROGRESS)]


def _as_message(item: dict[str, Any]) -> dict[str, Any] | None:
    kind = item.get("type")
    if kind == "message":
        role = item.get("role")
        text = " ".join(str(part.get("text", "")) for part in item.get("content", ())
                        if isinstance(part, dict)).strip()
        if role not in ("user", "assistant", "system") or not text:
            return None
        return _text_message("developer" if role == "system" else role, text)
    if kind == "function_call":
        return _text_message("developer", f"Called tool {item.get('name')} with "
                                          f"{item.get('arguments', '{}')}.")
    if kind == "function_call_output":
        return _text_message("developer", f"Tool result for call {item.get('call_id')}: "
                                          f"{item.get('output', '')}")
    return None


def _text_message(role: str, text: str) -> dict[str, Any]:
    part = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "role": role, "content": [{"type": part, "text": text}]}


def greeting_commentary(greeting: str) -> str:
    """Commentary that makes the model speak first: worded as an instruction, since a bare
    greeting string may not make it speak."""
    return f"Greet the caller now. Say: {greeting}"


def keypad_note(digits: str) -> str:
    """What a keypad press becomes for a model that hears no DTMF on a media stream."""
    return f"The caller pressed {' '.join(digits)} on their keypad."
