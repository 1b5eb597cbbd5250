"""The clinic agent's tests, through callbridge's pytest plugin: the real server answering with
agent.toml, a fake caller, the local fake model, the fake Twilio REST API — all on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest
from clinic_tools import book_appointment

from callbridge.evals.pytest_plugin import RunScenario
from callbridge.testing.fake_caller import FakeTwilioCaller
from callbridge.testing.fake_realtime import FakeRealtimeServer, Reply, ToolCall
from callbridge.testing.fake_twilio_rest import FakeTwilioRest
from callbridge.testing.stack import AgentStack

SCENARIOS = sorted((Path(__file__).parents[1] / "scenarios").glob("*.yaml"))


def test_the_booking_tool_answers_with_the_slot() -> None:
    """The tool itself, called like any function."""
    assert book_appointment("friday", "Bo Chen") == {"booked": "friday", "time": "10:30",
                                                      "for": "Bo Chen"}


async def test_the_greeting_is_heard_first(fake_caller: FakeTwilioCaller) -> None:
    """The agent speaks first, and the fake Twilio saw nothing it would reject."""
    await fake_caller.wait_for_agent_audio(timeout=5.0)
    await fake_caller.wait_until_agent_quiet(quiet_for=0.5, timeout=10.0)
    assert fake_caller.violations == []


@pytest.mark.callbridge_replies(
    Reply(tool_call=ToolCall("book_appointment", {"day": "friday", "name": "Bo Chen"})),
    Reply(text="You're booked for Friday at ten thirty."),
)
async def test_a_booking_reaches_the_tool_and_the_call_record(
        callbridge_stack: AgentStack, fake_caller: FakeTwilioCaller,
        fake_model: FakeRealtimeServer) -> None:
    """The caller asks, the model calls book_appointment, its result goes back to the model."""
    await fake_caller.wait_until_agent_quiet(quiet_for=0.5, timeout=10.0)  # the greeting
    await fake_caller.say_text("Friday please, my name is Bo Chen.")
    await fake_caller.wait_for_agent_audio(timeout=10.0, after=fake_caller.spoken_until)
    await fake_caller.wait_until_agent_quiet(quiet_for=0.8, timeout=20.0)
    await fake_caller.hang_up()
    call = await callbridge_stack.stored_call(fake_caller.call_sid)
    assert call is not None
    [booking] = call["tool_calls"]
    assert booking["name"] == "book_appointment"
    assert '"booked":"friday"' in booking["result"]
    assert fake_model.violations == []
    assert fake_model.truncate_errors == 0


@pytest.mark.callbridge_replies(Reply(tool_call=ToolCall("end_call", {"reason": "done"})),
                                Reply(text="Goodbye!"))
async def test_the_agent_hangs_up_through_twilio(
        fake_caller: FakeTwilioCaller, fake_twilio: FakeTwilioRest) -> None:
    """end_call: the goodbye plays, then the REST API gets Status=completed."""
    await fake_caller.wait_until_agent_quiet(quiet_for=0.5, timeout=10.0)
    await fake_caller.say_text("That's all, thanks.")
    await fake_caller.wait_closed(timeout=15.0)
    [hang_up] = fake_twilio.updates(fake_caller.call_sid)
    assert hang_up.value("Status") == "completed"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[p.stem for p in SCENARIOS])
async def test_scenario(scenario: Path, callbridge_eval: RunScenario) -> None:
    """Every scenario in scenarios/ passes, as `callbridge eval scenarios/` would say."""
    result = await callbridge_eval(scenario)
    assert result.passed, result.explain()
