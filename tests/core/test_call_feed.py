"""What a live call's followers see: actions and transcript frames as JSON events."""

from __future__ import annotations

import json

from callbridge.core import call_feed
from callbridge.core.actions import HangUp, Note, RunTool, SendTwilio, TurnFinished
from callbridge.core.twilio_messages import SendMark


def test_turns_tool_calls_notes_and_closing_become_events() -> None:
    """Each interesting action becomes one typed event; audio frames become none."""
    events = call_feed.from_actions([
        SendTwilio(SendMark("MZ1", "m1")),
        TurnFinished("agent", "Hello there", "Hello", True, "item_1", 2.0, 1.0),
        RunTool("call_1", "lookup_order", '{"id": 7}'),
        Note("barge_in", {"reaction_ms": 120}),
        Note("response_done", {"usage": {"total_tokens": 3}}),
        HangUp("hung up through the API"),
    ])
    assert [e["type"] for e in events] == ["turn", "tool_call", "event", "event"]
    assert events[0]["heard"] == "Hello"
    assert events[0]["interrupted"] is True
    assert events[1]["name"] == "lookup_order"
    assert events[2] == {"type": "event", "kind": "barge_in", "detail": {"reaction_ms": 120}}
    assert events[3]["detail"] == {"action": "hangup", "reason": "hung up through the API"}


def test_transcript_deltas_of_both_sides_are_recognised() -> None:
    """The agent's audio transcript and the caller's transcription deltas; nothing else."""
    agent = json.dumps({"type": "response.output_audio_transcript.delta", "item_id": "i1",
                        "response_id": "r1", "delta": "Hel"}).encode()
    caller = json.dumps({"type": "conversation.item.input_audio_transcription.delta",
                         "item_id": "i2", "delta": "When"})
    assert call_feed.transcript_delta(agent) == {
        "type": "transcript.delta", "role": "agent", "item_id": "i1", "delta": "Hel"}
    assert call_feed.transcript_delta(caller)["role"] == "caller"  # type: ignore[index]
    assert call_feed.transcript_delta(b'{"type": "response.output_audio.delta"}') is None
    assert call_feed.transcript_delta(b"response.output_audio_transcript.delta {") is None


def test_long_text_is_clipped_to_fit_a_message_between_instances() -> None:
    """A huge turn is cut, so an event always fits PostgreSQL's NOTIFY payload."""
    [event] = call_feed.from_actions([TurnFinished("caller", "x" * 10_000, "", False, "i",
                                                     1.0, 0.0)])
    assert len(event["text"]) <= call_feed.MAX_FIELD_CHARS + 1
