"""ConversationHistory and heard_text: what was said, in the order it was said, within budgets."""

from __future__ import annotations

from typing import Any

import pytest

from callbridge.core.history import ConversationHistory, heard_text


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def agent(text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text}],
    }


def call(call_id: str, arguments: str = "{}") -> dict[str, Any]:
    return {"type": "function_call", "call_id": call_id, "name": "lookup", "arguments": arguments}


def output(call_id: str, text: str = "ok") -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": text}


def test_turns_are_kept_in_the_order_they_were_said() -> None:
    """Caller and agent turns come back oldest first as Realtime items."""
    history = ConversationHistory()
    history.caller_said("u1", "Hello?")
    history.agent_said("a1", "Hi, how can I help?")
    history.caller_said("u2", "Where is my order?")
    assert history.items() == [user("Hello?"), agent("Hi, how can I help?"),
                               user("Where is my order?")]


def test_a_reserved_caller_turn_keeps_its_place_when_the_transcript_comes_late() -> None:
    """Reserved at speech stop, filled after the agent replied: the caller still comes first."""
    history = ConversationHistory()
    history.reserve_caller_turn("u1")
    history.agent_said("a1", "Sure, one moment.")
    history.caller_said("u1", "Can you check my order?")
    assert history.items() == [user("Can you check my order?"), agent("Sure, one moment.")]


def test_a_reserved_turn_whose_transcript_never_came_is_left_out() -> None:
    """A caller turn with no transcript yields no item."""
    history = ConversationHistory()
    history.reserve_caller_turn("u1")
    history.agent_said("a1", "Hello?")
    assert history.items() == [agent("Hello?")]


def test_reserving_a_turn_twice_keeps_the_first_place() -> None:
    """A second reserve_caller_turn for the same item does not move it."""
    history = ConversationHistory()
    history.reserve_caller_turn("u1")
    history.agent_said("a1", "Go on.")
    history.reserve_caller_turn("u1")
    history.caller_said("u1", "First.")
    assert history.items() == [user("First."), agent("Go on.")]


def test_an_agent_turn_nobody_heard_is_not_recorded() -> None:
    """agent_said with empty heard text (interrupted at 0 ms) adds nothing."""
    history = ConversationHistory()
    history.agent_said("a1", "")
    assert (history.items(), history.has_agent_turn("a1")) == ([], False)


def test_an_agent_turn_is_recorded_once() -> None:
    """A second agent_said for the same item keeps the first text."""
    history = ConversationHistory()
    history.agent_said("a1", "Hello there.")
    history.agent_said("a1", "Hello there, caller.")
    assert (history.items(), history.has_agent_turn("a1")) == ([agent("Hello there.")], True)


def test_a_tool_call_and_its_output_are_kept_in_order() -> None:
    """function_call then function_call_output, between the turns around them."""
    history = ConversationHistory()
    history.caller_said("u1", "Order A12?")
    history.tool_called("c1", "lookup", '{"id":"A12"}')
    history.tool_returned("c1", "shipped")
    history.agent_said("a1", "It shipped.")
    assert history.items() == [
        user("Order A12?"),
        {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": '{"id":"A12"}'},
        output("c1", "shipped"),
        agent("It shipped."),
    ]


def test_max_items_keeps_the_most_recent() -> None:
    """With more turns than max_items, the oldest are dropped."""
    history = ConversationHistory()
    for i in range(5):
        history.caller_said(f"u{i}", f"turn {i}")
    assert history.items(max_items=2) == [user("turn 3"), user("turn 4")]


def test_max_chars_keeps_the_most_recent_that_fit() -> None:
    """Three 10-character turns with a 25-character budget → the last two."""
    history = ConversationHistory()
    for i in range(3):
        history.caller_said(f"u{i}", f"{i}" * 10)
    assert history.items(max_chars=25) == [user("1" * 10), user("2" * 10)]
    assert history.items(max_chars=20) == [user("1" * 10), user("2" * 10)]
    assert history.items(max_chars=19) == [user("2" * 10)]


def test_max_chars_stops_at_the_first_item_that_does_not_fit() -> None:
    """An older short item is not pulled in past a longer one that broke the budget."""
    history = ConversationHistory()
    history.caller_said("u0", "hi")
    history.agent_said("a0", "x" * 50)
    history.caller_said("u1", "y" * 10)
    assert history.items(max_chars=30) == [user("y" * 10)]


def test_a_tool_output_is_never_kept_without_its_call() -> None:
    """When the budget cuts between a call and its output, the orphan output is dropped."""
    history = ConversationHistory()
    history.tool_called("c1", "lookup", "{}")
    history.tool_returned("c1", "ok")
    history.agent_said("a1", "Done.")
    assert history.items(max_items=3) == [call("c1"), output("c1"), agent("Done.")]
    assert history.items(max_items=2) == [agent("Done.")]


def test_a_tool_output_cut_by_the_char_budget_loses_its_orphan() -> None:
    """max_chars that admits the output but not the call's arguments drops the output too."""
    history = ConversationHistory()
    history.tool_called("c1", "lookup", "a" * 40)
    history.tool_returned("c1", "result")
    assert history.items(max_chars=10) == []
    assert history.items(max_chars=46) == [call("c1", "a" * 40), output("c1", "result")]


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ([], False),
        ([("caller", "Hi")], True),
        ([("caller", "Hi"), ("agent", "Hello")], False),
        ([("agent", "Hello"), ("caller", "Hi")], True),
        ([("caller", "Hi"), ("tool", "c1")], False),
        ([("caller", "Hi"), ("reserve", "u9")], True),
    ],
    ids=["empty", "caller", "agent-replied", "caller-after-agent", "tool-last", "reserved-last"],
)
def test_last_is_caller_tells_whether_the_agent_owes_a_reply(
    said: list[tuple[str, str]], expected: bool
) -> None:
    """True only when the last recorded item is the caller's; empty reservations do not count."""
    history = ConversationHistory()
    for i, (who, text) in enumerate(said):
        if who == "caller":
            history.caller_said(f"u{i}", text)
        elif who == "agent":
            history.agent_said(f"a{i}", text)
        elif who == "tool":
            history.tool_called(text, "lookup", "{}")
            history.tool_returned(text, "ok")
        else:
            history.reserve_caller_turn(text)
    assert history.last_is_caller() is expected


@pytest.mark.parametrize(
    ("text", "fraction", "expected"),
    [
        ("one two three four", 0.0, ""),
        ("one two three four", -0.5, ""),
        ("one two three four", 1.0, "one two three four"),
        ("one two three four", 1.5, "one two three four"),
        ("one two three four", 0.5, "one two"),  # cut at 9.0, inside "three"
        ("abcd efghi", 0.4, "abcd"),  # cut at 4.0: exactly the end of "abcd"
        ("abcd efghi", 0.35, ""),  # cut at 3.5, inside the first word
        ("hello world", 0.99, "hello"),  # the last word is not quite finished
    ],
)
def test_heard_text_keeps_only_whole_words(text: str, fraction: float, expected: str) -> None:
    """The caller heard the words that ended before the cut; a word cut in half is dropped."""
    assert heard_text(text, fraction) == expected
