"""Reading scenario files: the examples parse, and every mistake is one line naming its place."""

from __future__ import annotations

from pathlib import Path

import pytest

from callbridge.errors import ConfigError
from callbridge.evals.scenario import load_scenario

EXAMPLES = Path(__file__).parents[2] / "examples" / "clinic" / "scenarios"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return path


def test_the_example_scenarios_parse_into_turns_replies_and_expectations() -> None:
    """The booking example: three spoken turns, five replies, nine expectations."""
    scenario = load_scenario(EXAMPLES / "books_an_appointment.yaml")
    assert scenario.name == "books an appointment"
    assert [t.kind for t in scenario.turns] == ["say", "say", "say"]
    assert scenario.replies[1].tool == "book_appointment"
    assert scenario.replies[1].arguments == {"day": "tuesday", "name": "Ann Lee"}
    assert scenario.agent_file == EXAMPLES / ".." / "agent.toml"
    assert [e.kind for e in scenario.expect][:2] == ["tool_called", "tool_called"]
    assert scenario.expect[1].value == {"name": "book_appointment",
                                        "arguments": {"name": "(?i)ann"}, "match": "regex"}


def test_every_turn_kind_is_read(tmp_path: Path) -> None:
    """say with interrupt_after_s, silence_s, press, hang_up (both spellings)."""
    scenario = load_scenario(write(tmp_path, """
turns:
  - say: hello
    interrupt_after_s: 1.5
  - silence_s: 2
  - press: "12#"
  - hang_up: true
  - hang_up
"""))
    kinds = [(t.kind, t.text, t.seconds, t.interrupt_after_s) for t in scenario.turns]
    assert kinds == [("say", "hello", 0.0, 1.5), ("silence", "", 2.0, None),
                     ("press", "12#", 0.0, None), ("hang_up", "", 0.0, None),
                     ("hang_up", "", 0.0, None)]
    assert scenario.name == "scenario"


@pytest.mark.parametrize(("body", "message"), [
    ("turns: []\n", "needs turns"),
    ("turns: [{say: hi}]\nexpectations: []\n", "unknown key(s) expectations"),
    ("turns: [{say: hi, silence_s: 1}]\n", "turns[0]: each turn is one of"),
    ("turns: [{press: '12x'}]\n", "press takes keypad digits"),
    ("turns: [{silence_s: -1}]\n", "turns[0]: silence_s: expected a number of seconds"),
    ("turns: [{wav: missing.wav}]\n", "missing.wav: no such file"),
    ("turns: [{say: hi}]\nexpect: [{transcript_matches: '('}]\n",
     "expect[0]: transcript_matches: not a valid regular expression"),
    ("turns: [{say: hi}]\nexpect: [{tool_called: {name: x, match: fuzzy}}]\n",
     "match must be one of exact, subset, regex"),
    ("turns: [{say: hi}]\nexpect: [{sounds_nice: true}]\n", "unknown expectation 'sounds_nice'"),
    ("turns: [{say: hi}]\nexpect: [{ended_by_agent: yes please}]\n", "takes true or false"),
    ("turns: [{say: hi}]\nreplies: [{say: a, tool: b}]\n", "either say: TEXT or tool: NAME"),
    ("turns: [{say: hi}]\njudge: {rubric: polite, threshold: 2}\n", "threshold must be"),
    ("turns: [{say: hi]\n", "not valid YAML"),
    ("- just a list\n", "expected a mapping"),
])
def test_a_mistake_is_one_line_naming_the_file_and_the_entry(
        tmp_path: Path, body: str, message: str) -> None:
    """Each broken scenario raises a one-line ConfigError that says where and what."""
    path = write(tmp_path, body)
    with pytest.raises(ConfigError) as caught:
        load_scenario(path)
    text = str(caught.value)
    assert message in text
    assert str(path) in text
    assert "\n" not in text


def test_a_simulated_caller_and_a_judge_need_the_model(tmp_path: Path) -> None:
    """caller: without turns is allowed; with a judge the scenario needs a real text model."""
    scenario = load_scenario(write(tmp_path, """
caller: {persona: a busy parent, goal: book a check-up, max_turns: 3}
judge: {rubric: The agent booked the appointment., threshold: 0.8}
"""))
    assert scenario.needs_model
    assert scenario.turns == ()
    assert scenario.caller is not None
    assert scenario.caller.max_turns == 3
    assert scenario.judge is not None
    assert scenario.judge.threshold == 0.8
