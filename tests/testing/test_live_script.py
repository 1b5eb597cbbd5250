"""The agent stack's script for the fake GPT-Live server, made from Realtime-style replies."""

from __future__ import annotations

import pytest

from callbridge.testing.fake_live import LiveReply
from callbridge.testing.fake_realtime import Reply, ToolCall
from callbridge.testing.stack import live_script, realtime_script


def test_a_tool_call_and_the_reply_after_it_become_one_delegated_reply() -> None:
    book = ToolCall("book", {"day": "tuesday"})
    bye = ToolCall("end_call", {"reason": "done"})
    script = live_script([Reply("Your name?"), Reply(tool_call=book), Reply("Booked."),
                          LiveReply("As written.", delegate=True), Reply(tool_call=bye)])
    assert script == [LiveReply("Your name?"), LiveReply("Booked.", tool_calls=(book,)),
                      LiveReply("As written.", delegate=True),
                      LiveReply("{outputs}", tool_calls=(bye,))]


def test_a_live_reply_for_a_realtime_agent_is_refused() -> None:
    with pytest.raises(ValueError, match="LiveReply"):
        realtime_script([Reply("Hi."), LiveReply("Hi.")])
