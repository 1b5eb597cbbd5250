"""`callbridge eval` end to end: real calls through the real server on loopback, the local fake
model playing the scripted replies, or — with OPENAI_API_KEY — the configured model (here a fake
behind the URL override) with a judge and a simulated caller on a fake text model."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import pytest

from callbridge.cli import main
from callbridge.evals.command import evaluate
from callbridge.testing.fake_openai_http import ChatReply, FakeOpenAIHTTP
from callbridge.testing.fake_realtime import FakeRealtimeServer, Reply

pytestmark = pytest.mark.e2e

CLINIC = Path(__file__).parents[2] / "examples" / "clinic"

WRONG = f"""
name: expects the wrong things
agent_file: {CLINIC / "agent.toml"}
turns:
  - say: I have a question about my bill.
replies:
  - tool: transfer_call
    arguments: {{target: billing}}
expect:
  - transferred_to: reception
  - ended_by_agent: true
  - transcript_contains: {{text: goodbye, role: agent}}
  - no_truncate_errors: true
"""


def test_a_passing_and_a_failing_scenario_give_a_table_reports_and_exit_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The example passes offline; the wrong expectations fail with what happened instead."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(WRONG)
    junit, report = tmp_path / "eval.xml", tmp_path / "eval.json"
    status = main(["eval", str(CLINIC / "scenarios" / "transfers_billing.yaml"), str(wrong),
                   "--junit", str(junit), "--json", str(report)])
    out = capsys.readouterr().out
    assert status == 1
    assert "transfers billing questions     1       1" in out
    assert "expects the wrong things" in out
    assert "FAIL" in out
    assert "transferred_to: 'reception' — transferred to +15550100200" in out
    assert "ended_by_agent — the agent did not hang up (the call ended: transferred to billing)" \
        in out
    assert "transcript_contains" in out
    assert "agent: Please hold while I transfer your call." in out
    assert "1 scenario(s) FAILED" in out
    suite = ElementTree.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert cases["transfers billing questions"].find("failure") is None
    failure = cases["expects the wrong things"].find("failure")
    assert failure is not None
    assert failure.get("message") == ("transferred_to: 'reception'; ended_by_agent; "
                                      "transcript_contains: {'text': 'goodbye', 'role': 'agent'}")
    [passed, failed] = json.loads(report.read_text())
    assert passed["results"][0]["transfer_to"] == "+15550100200"
    assert failed["results"][0]["failures"][0]["expectation"] == "transferred_to: 'reception'"
    assert failed["results"][0]["transcript"][-1]["role"] == "agent"


def test_a_bad_scenario_stops_before_any_call_with_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A mistake in any file: exit 2, one line on stderr, no call placed."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("turns: [{say: hi}]\nexpect: [{transcript_matches: '('}]\n")
    assert main(["eval", str(CLINIC / "scenarios"), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "not a valid regular expression" in err


SIMULATED = f"""
name: a simulated caller books a check-up
agent_file: {CLINIC / "agent.toml"}
caller: {{persona: a busy parent, goal: book a check-up on Tuesday, max_turns: 3}}
judge: {{rubric: The agent offered to help., threshold: 0.7}}
expect:
  - transcript_contains: {{text: How can I help, role: agent}}
"""


async def test_with_a_key_the_model_judge_and_simulated_caller_are_the_configured_ones(
        tmp_path: Path) -> None:
    """OPENAI_API_KEY: the agent's model at CALLBRIDGE_OPENAI_URL, and the text model at
    CALLBRIDGE_ANALYSIS_URL plays the caller (two lines, then done) and judges the call."""
    path = tmp_path / "simulated.yaml"
    path.write_text(SIMULATED)
    lines = [ChatReply.json({"say": "Hi, can I book a check-up on Tuesday?", "done": False}),
             ChatReply.json({"say": "Thanks, bye.", "done": True}),
             ChatReply.json({"score": 0.9, "reason": "It offered help."})]
    async with FakeRealtimeServer([Reply("How can I help you today?")]) as model, \
            FakeOpenAIHTTP(lines, api_key="sk-test") as text:
        env = {"OPENAI_API_KEY": "sk-test", "CALLBRIDGE_OPENAI_URL": model.url,
               "CALLBRIDGE_ANALYSIS_URL": text.url}
        [result] = await evaluate([path], 1, env)
        assert result.skipped is None
        [run] = result.runs
        assert run.failures == [], run.failures
        assert run.observed.judge_score == 0.9
        asked = [r.body["response_format"]["json_schema"]["name"] for r in text.requests]
        assert asked == ["caller_turn", "caller_turn", "judgement"]
        assert "book a check-up on Tuesday" in text.requests[0].text  # the goal
        assert "caller: " in text.requests[1].text  # the call so far, from the call record
        assert "Rubric:\nThe agent offered to help." in text.requests[2].text
        assert text.violations == []
        assert model.violations == []
        assert len(model.connections) == 1
        said = [e for e in model.connections[0].client_events
                if e["type"] == "input_audio_buffer.append"]
        assert said, "the simulated caller's lines reached the model as audio"

    [skipped] = await evaluate([path], 1, {})
    assert skipped.skipped == "a judge or simulated caller needs OPENAI_API_KEY"


AGENTS = """
default_agent = "front"
[agents.front]
greeting = "Front desk."
[agents.night]
greeting = "Night line, how can I help?"
dtmf_pause_s = 0.5
"""

NIGHT = """
name: the night line
agent: night
agent_file: agents.toml
turns:
  - wav: question.wav
  - silence_s: 3
  - press: "42#"
  - hang_up: true
replies:
  - say: Yes, I'm here.
  - say: Extension forty-two, connecting.
expect:
  - transcript_contains: {text: Night line, role: agent}
  - transcript_lacks: {text: Front desk, role: agent}
  - transcript_contains: {text: forty-two, role: agent}
  - ended_by_agent: false
  - max_silence_s: 2.5
"""


async def test_a_named_agent_answers_a_recording_a_pause_keys_and_a_hang_up(
        tmp_path: Path) -> None:
    """agent: picks the non-default agent; the WAV is heard, the caller's own silence is not
    counted as dead air, the keypad digits reach the model, and the caller hangs up."""
    from callbridge.audio.wav import write_wav_ulaw_as_pcm16
    from callbridge.testing.speech import speak

    (tmp_path / "agents.toml").write_text(AGENTS)
    write_wav_ulaw_as_pcm16(tmp_path / "question.wav", speak("Is anyone there tonight?"))
    path = tmp_path / "night.yaml"
    path.write_text(NIGHT)
    [result] = await evaluate([path], 1, {})
    [run] = result.runs
    assert run.failures == [], run.failures
    assert run.observed.end_reason == "caller hung up"
    assert run.observed.longest_silence_s < 2.5


HUNG_UP = f"""
name: the agent hangs up before the script ends
agent_file: {CLINIC / "agent.toml"}
turns:
  - say: That's all, goodbye.
  - say: Oh wait, one more thing.
  - press: "1"
replies:
  - tool: end_call
    arguments: {{reason: the caller said goodbye}}
  - say: Goodbye!
expect:
  - ended_by_agent: true
  - transcript_lacks: {{text: one more thing, role: caller}}
"""


async def test_turns_left_when_the_agent_hangs_up_are_not_played(tmp_path: Path) -> None:
    """The script stops where the call ended; that is judged, not an error."""
    path = tmp_path / "hung_up.yaml"
    path.write_text(HUNG_UP)
    [result] = await evaluate([path], 1, {})
    [run] = result.runs
    assert run.failures == [], run.failures
    assert run.observed.end_reason == "agent ended the call: the caller said goodbye"


def test_a_gpt_live_agent_is_evaluated_offline_against_the_fake_gpt_live_server(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The clinic as a GPT-Live agent: the same scenario passes offline, its scripted tool
    replies played by the fake GPT-Live backend, and the tool runs in callbridge's runner."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    agent = tmp_path / "agent.toml"
    agent.write_text((CLINIC / "agent.toml").read_text().replace(
        "[agent]\n", '[agent]\nmodel = "gpt-live-1.1"\n', 1))
    monkeypatch.syspath_prepend(str(CLINIC))
    scenario = tmp_path / "books.yaml"
    scenario.write_text((CLINIC / "scenarios" / "books_an_appointment.yaml").read_text()
                        .replace("agent_file: ../agent.toml", f"agent_file: {agent}")
                        .replace("  - no_truncate_errors: true\n", ""))
    status = main(["eval", str(scenario)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "1 scenario(s), 1/1 run(s) passed" in out
