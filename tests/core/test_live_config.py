"""An agent on GPT-Live: its session.start, the backend's tools and the restored conversation."""

from __future__ import annotations

import json

from callbridge.core import live_config as lc
from callbridge.core import live_events as live
from callbridge.core.agent import AgentProfile
from callbridge.testing.live_validation import validate_live_client_event

BOOK = {"type": "function", "name": "book_table", "description": "Book a table.",
        "parameters": {"type": "object", "properties": {
            "people": {"type": "integer"}, "time": {"type": "string"}},
            "required": ["people", "time"], "additionalProperties": False}}
LOOKUP = {"type": "function", "name": "lookup", "description": "Look up an order.",
          "parameters": {"type": "object", "properties": {"order": {"type": "string"},
                                                          "verbose": {"type": "boolean"}},
                         "required": ["order"]}}
PROFILE = AgentProfile(name="bakery", model="gpt-live-1.1", voice="cedar",
                       instructions="You are Ada's Bakery's assistant.", tools=(BOOK, LOOKUP),
                       builtin_tools=("end_call",))


def start_event(session: dict[str, object]) -> dict[str, object]:
    payload: dict[str, object] = json.loads(live.SessionStart(session).serialize())
    assert validate_live_client_event(payload) == payload
    return payload


def test_only_gpt_live_models_go_to_gpt_live() -> None:
    """The model's name chooses the API: gpt-live-1 and 1.1 do, Realtime models do not."""
    assert lc.is_live_model("gpt-live-1")
    assert lc.is_live_model("gpt-live-1.1")
    assert not lc.is_live_model("gpt-realtime-2.1")
    assert not lc.is_live_model("my-gpt-live")


def test_the_session_start_is_pcmu_both_ways_and_passes_the_strict_sdk_check() -> None:
    """μ-law 8 kHz, the voice, instructions and a Responses backend with the agent's tools."""
    session = lc.session_config(PROFILE, lc.LiveOptions())
    start_event(session)
    assert session["model"] == "gpt-live-1.1"
    assert session["audio"] == {"format": {"type": "audio/pcmu", "rate": 8000},
                                "output": {"voice": "cedar"}}
    delegation = session["delegation"]
    assert delegation["type"] == "responses"
    assert delegation["responses"]["model"] == lc.DEFAULT_BACKEND_MODEL
    names = [tool["name"] for tool in delegation["responses"]["tools"]]
    assert names == ["book_table", "lookup", "end_call"]
    assert "input" not in session
    assert session["store"] is False


def test_tools_are_strict_only_where_the_schema_already_is() -> None:
    """A closed, all-required schema is strict; one with optional fields keeps its meaning."""
    strict = {tool["name"]: tool["strict"] for tool in lc.function_tools(PROFILE)}
    assert strict == {"book_table": True, "lookup": False, "end_call": False}


def test_strictness_is_checked_in_nested_objects_and_lists() -> None:
    """An open object inside an array makes the whole schema non-strict."""
    closed = {"type": "object", "properties": {}, "required": [], "additionalProperties": False}
    nested_open = {"type": "object", "additionalProperties": False, "required": ["rows"],
                   "properties": {"rows": {"type": "array", "items": {
                       "type": "object", "properties": {"a": {"type": "string"}},
                       "required": ["a"]}}}}
    assert lc.is_strict_schema(closed)
    assert not lc.is_strict_schema(nested_open)
    assert lc.is_strict_schema({"anyOf": [{"type": "string"}, {"type": "null"}]})


def test_the_instructions_carry_the_policy_lines_and_name_the_backend_tools() -> None:
    """Interruption and backchannel policy always; the delegation policy lists the tools."""
    text = lc.live_instructions(PROFILE, lc.LiveOptions())
    assert text.startswith("You are Ada's Bakery's assistant.")
    assert lc.INTERRUPTION_POLICY in text
    assert lc.BACKCHANNEL_POLICY in text
    assert "- book_table: Book a table." in text
    assert "Do not guess the result while waiting." in text


def test_client_delegation_sends_every_delegation_to_us_and_passes_the_sdk_check() -> None:
    """`live_delegation = client`: no backend model, no tools on the wire."""
    session = lc.session_config(PROFILE, lc.LiveOptions(delegation="client"))
    start_event(session)
    assert session["delegation"] == {"type": "client", "acknowledgement_delay_ms": 400}
    assert "Backend tools" not in session["instructions"]


def test_backend_model_and_instructions_can_be_chosen() -> None:
    """The agent file's backend_model and backend_instructions reach the backend."""
    options = lc.LiveOptions(backend_model="gpt-5.4", backend_instructions="Be terse.")
    responses = lc.session_config(PROFILE, options)["delegation"]["responses"]
    assert responses["model"] == "gpt-5.4"
    assert responses["instructions"] == "Be terse."


def test_a_replacing_session_gets_the_conversation_as_text_and_no_second_greeting() -> None:
    """Caller and agent turns as messages, tool traffic and notes given mid-call as developer
    notes, and a final note that the call is already under way."""
    items = [
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": "Hello, Ada's Bakery."}]},
        {"type": "message", "role": "user",
         "content": [{"type": "input_text", "text": "A table for two at eight."}]},
        {"type": "function_call", "call_id": "c1", "name": "book_table",
         "arguments": '{"people":2,"time":"20:00"}'},
        {"type": "function_call_output", "call_id": "c1", "output": '{"ok":true}'},
        {"type": "message", "role": "system",
         "content": [{"type": "input_text", "text": "The caller is a VIP."}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "  "}]},
    ]
    session = lc.session_config(PROFILE, lc.LiveOptions(), restored=items)
    start_event(session)
    texts = [(m["role"], m["content"][0]["text"]) for m in session["input"]]
    assert texts == [
        ("assistant", "Hello, Ada's Bakery."),
        ("user", "A table for two at eight."),
        ("developer", 'Called tool book_table with {"people":2,"time":"20:00"}.'),
        ("developer", 'Tool result for call c1: {"ok":true}'),
        ("developer", "The caller is a VIP."),
        ("developer", lc.ALREADY_IN_PROGRESS),
    ]


def test_the_restored_conversation_keeps_the_newest_turns_within_the_limits() -> None:
    """Never more than 128 messages or the character budget: the oldest turns are dropped."""
    many = [{"type": "message", "role": "user",
             "content": [{"type": "input_text", "text": f"turn {i}"}]} for i in range(300)]
    restored = lc.restore_input(many)
    assert len(restored) == lc.MAX_INPUT_MESSAGES
    assert restored[-2]["content"][0]["text"] == "turn 299"
    long = [{"type": "message", "role": "user",
             "content": [{"type": "input_text", "text": str(i) * 5000}]} for i in range(10)]
    restored = lc.restore_input(long)
    assert sum(len(m["content"][0]["text"]) for m in restored) <= lc.MAX_INPUT_CHARS
    assert restored[-2]["content"][0]["text"].startswith("9")


def test_greeting_and_keypad_become_text_the_model_acts_on() -> None:
    """The greeting is an instruction to speak; a keypress is a sentence the model reads."""
    assert lc.greeting_commentary("Hi there!") == "Greet the caller now. Say: Hi there!"
    assert lc.keypad_note("12#") == "The caller pressed 1 2 # on their keypad."
