"""The pytest plugin, as a user gets it: registered by the installed package's `pytest11` entry
point, its fixtures serving the agent file named in the user's ini file."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

AGENT = """
greeting = "Hello from the test agent."
tools = ["end_call"]
"""

TESTS = '''
import pytest
from callbridge.testing.fake_realtime import Reply, ToolCall


async def test_greeting_heard(fake_caller, fake_model):
    await fake_caller.wait_for_agent_audio(timeout=5.0)
    await fake_caller.wait_until_agent_quiet(quiet_for=0.5, timeout=10.0)
    assert len(fake_model.connections) == 1


@pytest.mark.callbridge_replies(Reply(tool_call=ToolCall("end_call", {"reason": "bye"})),
                                Reply(text="Goodbye!"))
async def test_hang_up(fake_caller, fake_twilio):
    await fake_caller.wait_until_agent_quiet(quiet_for=0.5, timeout=10.0)
    await fake_caller.say_text("Bye.")
    await fake_caller.wait_closed(timeout=15.0)
    assert fake_twilio.updates(fake_caller.call_sid)[0].value("Status") == "completed"


async def test_a_wrong_scenario_explains_itself(callbridge_eval, tmp_path):
    path = tmp_path / "wrong.yaml"
    path.write_text("turns: [{say: hi}]\\nreplies: [Fine thanks.]\\n"
                    "expect: [{transcript_contains: {text: booked, role: agent}}]\\n")
    result = await callbridge_eval(path)
    assert not result.passed
    print(result.explain())
    assert "agent: Fine thanks." in result.explain()
'''


def test_the_plugin_is_registered_by_the_package_entry_point() -> None:
    """`pytest11` names callbridge.evals.pytest_plugin, so pytest loads it anywhere."""
    [plugin] = [e for e in entry_points(group="pytest11") if e.name == "callbridge"]
    assert plugin.value == "callbridge.evals.pytest_plugin"


def test_a_users_project_gets_the_fixtures_with_its_own_agent_file(tmp_path: Path) -> None:
    """A folder with an agent file, an ini option and a test module — no conftest — passes."""
    (tmp_path / "agent.toml").write_text(AGENT)
    (tmp_path / "pytest.ini").write_text("[pytest]\ncallbridge_agent_file = agent.toml\n"
                                         "asyncio_mode = auto\n"
                                         "asyncio_default_fixture_loop_scope = function\n")
    (tmp_path / "test_agent.py").write_text(TESTS)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "3 passed" in done.stdout
    assert "transcript_contains: {'text': 'booked', 'role': 'agent'}: not said" in done.stdout
