"""Judging a run: each expectation holds or fails with the evidence that breaks it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from callbridge.evals.expectations import Observed, ToolUse, check
from callbridge.evals.scenario import Expectation, Judge, Scenario


def scenario(*expect: tuple[str, Any], judge: Judge | None = None) -> Scenario:
    return Scenario("s", Path("s.yaml"), None, None, (), (),
                    tuple(Expectation(kind, value) for kind, value in expect), judge=judge)


def tool(name: str, arguments: dict[str, Any] | None = None, match: str = "subset") -> Any:
    return ("tool_called", {"name": name, "arguments": arguments, "match": match})


def seen(**values: Any) -> Observed:
    observed = Observed(
        transcript=[("agent", "Hello, Bright Smile."), ("caller", "Book me on Friday."),
                    ("agent", "You're booked for Friday.")],
        tools=[ToolUse("book", {"day": "friday", "party": 2})],
        turn_latencies=[0.6, 1.8], longest_silence_s=1.2, end_reason="caller hung up")
    for key, value in values.items():
        setattr(observed, key, value)
    return observed


@pytest.mark.parametrize("expectation", [
    tool("book"),
    tool("book", {"day": "friday"}),
    tool("book", {"day": "friday", "party": 2}, "exact"),
    tool("book", {"day": "^fri", "party": "2"}, "regex"),
    ("tool_not_called", {"name": "cancel"}),
    ("transcript_contains", {"text": "BOOKED FOR friday", "role": "agent"}),
    ("transcript_lacks", {"text": "sorry", "role": "any"}),
    ("transcript_matches", {"text": r"booked for \w+day", "role": "any"}),
    ("max_turn_latency_s", 2.0),
    ("max_silence_s", 1.5),
    ("no_truncate_errors", True),
    ("ended_by_agent", False),
])
def test_an_expectation_that_holds_is_not_reported(expectation: tuple[str, Any]) -> None:
    """Matching evidence: no failure."""
    assert check(scenario(expectation), seen()) == []


@pytest.mark.parametrize(("expectation", "evidence"), [
    (tool("cancel"), "cancel was not called (tools called: book)"),
    (tool("book", {"day": "monday"}), "called with book({'day': 'friday', 'party': 2}); wanted "
                                      "subset {'day': 'monday'}"),
    (tool("book", {"day": "friday"}, "exact"), "wanted exact"),
    (tool("book", {"day": "^mon"}, "regex"), "wanted regex"),
    (("tool_not_called", {"name": "book"}), "called 1×"),
    (("transcript_contains", {"text": "goodbye", "role": "agent"}),
     "not said; transcript: agent: Hello, Bright Smile. | agent: You're booked for Friday."),
    (("transcript_contains", {"text": "friday", "role": "caller"}), None),
    (("transcript_lacks", {"text": "booked", "role": "any"}), "said; transcript:"),
    (("max_turn_latency_s", 1.0), "turn 2 took 1.80 s (all: 0.60, 1.80)"),
    (("max_silence_s", 1.0), "the caller heard 1.20 s of dead air"),
    (("ended_by_agent", True), "the agent did not hang up (the call ended: caller hung up)"),
    (("transferred_to", "billing"), "no transfer (the call ended: caller hung up)"),
    (("analysis", {"intent": "book"}), "no analysis (not run)"),
])
def test_a_broken_expectation_says_what_happened_instead(
        expectation: tuple[str, Any], evidence: str | None) -> None:
    """Each failure carries the evidence a person needs to see what went wrong."""
    failures = check(scenario(expectation), seen())
    if evidence is None:
        assert failures == []
        return
    [failure] = failures
    assert evidence in failure.evidence


def test_a_transfer_matches_by_target_name_or_number() -> None:
    """transferred_to accepts the agent's name for the target or the number dialled."""
    observed = seen(transfer_to="+15550100200", transfer_names=("billing",))
    assert check(scenario(("transferred_to", "billing")), observed) == []
    assert check(scenario(("transferred_to", "+15550100200")), observed) == []
    [failure] = check(scenario(("transferred_to", "sales")), observed)
    assert failure.evidence == "transferred to +15550100200"


def test_analysis_fields_match_by_regex_value_or_range_and_name_the_wrong_ones() -> None:
    """Strings are patterns, numbers equal, {min, max} a range; custom fields are found too."""
    observed = seen(analysis={"intent": "book a visit", "lead_score": 70,
                              "custom": {"booked_day": "friday"}})
    good = ("analysis", {"intent": "(?i)book", "lead_score": {"min": 50},
                         "booked_day": "friday"})
    assert check(scenario(good), observed) == []
    bad = ("analysis", {"intent": "cancel", "lead_score": 10, "other": "x"})
    [failure] = check(scenario(bad), observed)
    assert failure.evidence == "intent='book a visit'; lead_score=70; other missing"


def test_the_judge_fails_below_its_threshold_with_its_reason() -> None:
    """A score under the threshold is a failure quoting the judge's reason."""
    judged = scenario(judge=Judge("polite", 0.8))
    assert check(judged, seen(judge_score=0.9, judge_reason="fine")) == []
    [failure] = check(judged, seen(judge_score=0.5, judge_reason="curt"))
    assert (failure.expectation, failure.evidence) == ("judge ≥ 0.8", "scored 0.50: curt")
    [failure] = check(judged, seen(judge_reason="the judgement request failed: 500"))
    assert failure.evidence == "the judgement request failed: 500"


def test_a_run_that_went_wrong_fails_whatever_it_expected() -> None:
    """A problem with the call itself (no record, a stall) is reported first."""
    [failure] = check(scenario(), seen(problems=["the call left no record"]))
    assert failure == failure.__class__("the call ran", "the call left no record")
