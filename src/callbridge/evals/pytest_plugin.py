"""callbridge's pytest plugin (the `pytest11` entry point `callbridge`): fixtures for testing
your own agent through the real server, on loopback, with no account anywhere.

Owns the fixtures and their configuration:

- `callbridge_agent_file` — your agent file: the `callbridge_agent_file` ini option (relative
  to the ini file), else `CALLBRIDGE_AGENT_FILE`; override the fixture to choose per test.
- `callbridge_replies` — what the fake model answers, in order: the `callbridge_replies(...)`
  marker's `Reply`s, else one default reply; override the fixture for a whole module.
- `callbridge_stack` — the server on a free port with your agent file, the fake model, the fake
  Twilio REST API and a temporary call record (`callbridge.testing.stack.AgentStack`).
- `fake_model`, `fake_twilio` — the stack's fake Realtime server and fake Twilio REST API.
- `fake_caller` — a caller already connected (webhook answered, media stream started), hung up
  after the test.
- `callbridge_eval` — `await callbridge_eval("scenarios/x.yaml")` runs a `callbridge eval`
  scenario once and returns its result; `assert result.passed, result.explain()`.

The fixtures are async (pytest-asyncio). Without pytest-asyncio installed the plugin registers
nothing, so installing callbridge never breaks anyone else's pytest.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from callbridge.evals.expectations import Failure, Observed
from callbridge.testing.fake_caller import FakeTwilioCaller
from callbridge.testing.fake_live import FakeLiveServer, LiveReply
from callbridge.testing.fake_realtime import FakeRealtimeServer, Reply
from callbridge.testing.fake_twilio_rest import FakeTwilioRest
from callbridge.testing.stack import AgentStack, agent_stack

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the plugin is inert without it
    pytest_asyncio = None  # type: ignore[assignment]

INI_AGENT_FILE = "callbridge_agent_file"
MARKER = "callbridge_replies"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(INI_AGENT_FILE, "the agent file callbridge's fixtures serve (relative to the "
                                  "ini file)", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(*replies): what callbridge's fake model "
                                       "answers in this test, in order (callbridge.testing."
                                       "fake_realtime.Reply, or fake_live.LiveReply for a "
                                       "GPT-Live agent)")


@dataclass
class ScenarioOutcome:
    """One run of a scenario: `passed`, the broken expectations, and what was observed."""

    failures: list[Failure]
    observed: Observed

    @property
    def passed(self) -> bool:
        return not self.failures

    def explain(self) -> str:
        lines = [f"{f.expectation}: {f.evidence}" for f in self.failures]
        return "\n".join([*lines, "transcript:", *self.observed.transcript_lines()])


RunScenario = Callable[[str | Path], Awaitable[ScenarioOutcome]]  # `callbridge_eval`'s type


if pytest_asyncio is not None:

    @pytest.fixture
    def callbridge_agent_file(request: pytest.FixtureRequest) -> Path | None:
        """The agent file the server answers with (None: the default agent)."""
        configured = request.config.getini(INI_AGENT_FILE)
        if configured:
            base = request.config.inipath.parent if request.config.inipath else Path.cwd()
            return base / str(configured)
        from_env = os.environ.get("CALLBRIDGE_AGENT_FILE")
        return Path(from_env) if from_env else None

    @pytest.fixture
    def callbridge_replies(request: pytest.FixtureRequest) -> list[Reply | LiveReply]:
        """The fake model's replies: the `callbridge_replies` marker's, else one default."""
        marker = request.node.get_closest_marker(MARKER)
        return list(marker.args) if marker is not None else [Reply()]

    @pytest_asyncio.fixture
    async def callbridge_stack(callbridge_agent_file: Path | None,
                               callbridge_replies: list[Reply | LiveReply],
                               ) -> AsyncIterator[AgentStack]:
        """The real server with your agent file, the fake model and the fake Twilio REST API."""
        async with agent_stack(agent_file=callbridge_agent_file,
                               replies=callbridge_replies) as stack:
            yield stack

    @pytest.fixture
    def fake_model(callbridge_stack: AgentStack) -> FakeRealtimeServer | FakeLiveServer:
        """The fake model server the stack's agent talks to: Realtime, or GPT-Live for a
        `gpt-live*` agent."""
        assert callbridge_stack.model is not None
        return callbridge_stack.model

    @pytest.fixture
    def fake_twilio(callbridge_stack: AgentStack) -> FakeTwilioRest:
        """The fake Twilio REST API (hang-ups, transfers, recordings, outbound calls)."""
        return callbridge_stack.rest

    @pytest_asyncio.fixture
    async def fake_caller(callbridge_stack: AgentStack) -> AsyncIterator[FakeTwilioCaller]:
        """A caller whose call has been answered and whose media stream is running."""
        async with callbridge_stack.caller() as caller:
            await caller.dial()
            await caller.connect()
            yield caller

    @pytest.fixture
    def callbridge_eval() -> RunScenario:
        """Run a `callbridge eval` scenario file once (offline unless OPENAI_API_KEY is set)."""
        from callbridge.evals.expectations import check
        from callbridge.evals.runner import run_once
        from callbridge.evals.scenario import load_scenario

        async def run(path: str | Path) -> ScenarioOutcome:
            scenario = load_scenario(Path(path))
            observed = await run_once(scenario, os.environ)
            return ScenarioOutcome(check(scenario, observed), observed)

        return run
