"""The analysis request and the checks on the model's answer, without a network."""

from __future__ import annotations

import json

import pytest

from callbridge.analytics.analyzer import (
    AnalysisError,
    analysis_schema,
    build_request,
    fit_transcript,
    parse_answer,
    render_transcript,
)
from callbridge.core.agent import AgentProfile
from callbridge.store.outcomes import Analysis
from tests.analytics.conftest import FIELDS

ANSWER = {"summary": "Wants a cake.", "sentiment": 0.6, "intent": "order a cake",
          "lead_score": 80, "action_items": ["call back with a quote"],
          "custom": {"budget": 900, "callback": True}}
SCHEMA = analysis_schema(FIELDS)


def test_custom_fields_sit_under_custom_beside_the_built_in_ones() -> None:
    """The built-in fields keep their names whatever an agent file adds."""
    assert SCHEMA["required"] == ["summary", "sentiment", "intent", "lead_score",
                                  "action_items", "custom"]
    assert SCHEMA["properties"]["custom"]["required"] == ["budget", "callback"]
    assert "custom" not in analysis_schema({})["properties"]


def test_the_request_asks_for_strict_structured_output_with_the_transcript() -> None:
    """One Chat Completions body: the model, the transcript, and the strict schema."""
    call = {"call_sid": "CA1", "direction": "inbound", "duration_s": 31.2,
            "end_reason": "caller hung up"}
    request = build_request("gpt-test", call, AgentProfile(analysis_fields=FIELDS),
                            "[0:00] Caller: hello")
    assert request["model"] == "gpt-test"
    assert request["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "call_analysis", "strict": True, "schema": SCHEMA}}
    assert "[0:00] Caller: hello" in request["messages"][1]["content"]
    assert "31 s, ended because: caller hung up" in request["messages"][1]["content"]


def test_the_transcript_shows_what_the_caller_heard_and_interruptions() -> None:
    """Agent turns are rendered as heard, with a mark where the caller cut in."""
    turns = [{"role": "agent", "text": "We open at nine and close at five.",
              "heard": "We open at nine", "interrupted": True, "started_ms": 0},
             {"role": "caller", "text": "Sorry, on Sunday?", "heard": "", "started_ms": 61_500}]
    assert render_transcript(turns) == ("[0:00] Agent: We open at nine [interrupted]\n"
                                        "[1:01] Caller: Sorry, on Sunday?")
    assert render_transcript([]) == "(nothing was said)"


def test_a_long_transcript_keeps_its_start_and_end_with_a_note() -> None:
    """The middle is cut to fit the budget, and the note says how much."""
    text = "A" * 600 + "M" * 1000 + "Z" * 400
    fitted, note = fit_transcript(text, 1000)
    assert fitted == ("A" * 500 + "\n[… 1000 characters of the middle of the call omitted …]\n"
                      + "M" * 100 + "Z" * 400)
    assert note == ("transcript truncated: 1000 of 2000 characters omitted from the middle; "
                    "the start and the end were analysed")
    assert fit_transcript("short", 1000) == ("short", None)


def test_a_valid_answer_becomes_an_analysis() -> None:
    """Values are typed and the note is kept."""
    analysis = parse_answer(json.dumps(ANSWER), None, SCHEMA, "gpt-test", "a note")
    assert analysis == Analysis("gpt-test", "Wants a cake.", 0.6, "order a cake", 80,
                                ("call back with a quote",), {"budget": 900, "callback": True},
                                "a note")


@pytest.mark.parametrize(("content", "refusal", "message"), [
    ('{"summary": "cut', None, "the model's answer is not JSON"),
    (json.dumps({**ANSWER, "sentiment": 1.7}), None, "$.sentiment: 1.7 is above the maximum 1"),
    (json.dumps({**ANSWER, "lead_score": -3}), None, "$.lead_score: -3 is below the minimum 0"),
    (json.dumps({**ANSWER, "custom": {"budget": "lots", "callback": True}}), None,
     "$.custom.budget: expected number, got string"),
    (None, "I can't help with that.", "the model refused: I can't help with that."),
])
def test_an_unusable_answer_is_an_analysis_error(content: str | None, refusal: str | None,
                                                 message: str) -> None:
    """Malformed JSON, out-of-range values, wrong types and refusals are all refused."""
    with pytest.raises(AnalysisError, match=r"^the model") as info:
        parse_answer(content, refusal, SCHEMA, "gpt-test", None)
    assert message in str(info.value)
