"""A whole local deployment for agent tests: our real server on a free loopback port with the
user's agent file, the fake Realtime model, the fake Twilio REST API, and callers for it.

Owns assembling those pieces in the right order (the fakes first, so the server's settings can
point at them), a temporary SQLite call record so a test can read back what was stored, and
taking everything down again. `callbridge eval` and the pytest plugin both stand on it.

    async with agent_stack(agent_file="agent.toml", replies=[Reply("Hello!")]) as stack:
        async with stack.caller() as caller:
            await caller.dial()
            await caller.connect()
            ...
        call = await stack.stored_call(caller.call_sid)

The fake model speaks the API of the default agent's model: the fake Realtime server, or the
fake GPT-Live server for a `gpt-live*` agent. Realtime-style `Reply`s are turned into the
GPT-Live script (`live_script`: a tool call and the reply after it become one delegated reply
whose backend calls the tool), and `LiveReply`s are taken as they are.

With `fake_model=False` the server talks to whatever `CALLBRIDGE_OPENAI_URL` /
`CALLBRIDGE_LIVE_URL` / `OPENAI_API_KEY` in `env` say (the real model, or another fake).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from callbridge.config import Settings, load_settings
from callbridge.core.live_config import is_live_model
from callbridge.server.app import CallbridgeServer, create_app
from callbridge.server.runner import RunningServer, running
from callbridge.store.migrate import upgrade_async
from callbridge.testing.fake_caller import FakeTwilioCaller
from callbridge.testing.fake_live import FakeLiveServer, LiveReply
from callbridge.testing.fake_realtime import FakeRealtimeServer, Reply, ToolCall
from callbridge.testing.fake_twilio_rest import FakeTwilioRest

PUBLIC_URL = "https://agent-tests.callbridge.invalid"
CALLER_ID = "+15550009999"


@dataclass
class AgentStack:
    """The running pieces; `caller()` makes a fake Twilio caller for this server."""

    server: RunningServer
    state: CallbridgeServer
    settings: Settings
    rest: FakeTwilioRest
    model: FakeRealtimeServer | FakeLiveServer | None  # None: the configured upstream
    auth_token: str

    @property
    def url(self) -> str:
        return self.server.url

    def caller(self, **options: Any) -> FakeTwilioCaller:
        """An inbound caller Twilio's (fake) REST API knows, so a hang-up or redirect ends it."""
        return self.rest.inbound_caller(**options)

    async def stored_call(self, call_sid: str) -> dict[str, Any] | None:
        """The call as the call record has it, once the writer has caught up (None: no record)."""
        if self.state.writer is None or self.state.store is None:
            return None
        await self.state.writer.flush()
        return await self.state.store.get_call(call_sid)

    async def call_finished(self, call_sid: str, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until the server has finished with the call (record written, sockets closed)."""
        calls = self.state.calls
        bridge = calls.get(call_sid)
        if bridge is None:
            return
        await asyncio.wait_for(bridge.finished.wait(), timeout)


def live_script(replies: Sequence[Reply | LiveReply]) -> list[LiveReply]:
    """A script for the fake GPT-Live server: `LiveReply`s as they are; a Realtime `Reply` with
    a tool call joins the reply after it as one delegated reply (the backend calls the tool,
    then the model says that reply's text)."""
    script: list[LiveReply] = []
    calls: list[ToolCall] = []
    for reply in replies:
        if isinstance(reply, LiveReply):
            script.append(reply)
        elif reply.tool_call is not None:
            calls.append(reply.tool_call)
        else:
            script.append(LiveReply(reply.text, audio=reply.audio, delay_ms=reply.delay_ms,
                                    tool_calls=tuple(calls)))
            calls = []
    if calls:
        script.append(LiveReply("{outputs}", tool_calls=tuple(calls)))
    return script


def realtime_script(replies: Sequence[Reply | LiveReply]) -> list[Reply]:
    """A script for the fake Realtime server; a `LiveReply` in it is a mistake, said plainly."""
    live = [r for r in replies if isinstance(r, LiveReply)]
    if live:
        raise ValueError("LiveReply scripts the fake GPT-Live server, but the agent's model "
                         "is a Realtime model; use Reply")
    return [r for r in replies if isinstance(r, Reply)]


def _speaks_live(values: Mapping[str, str]) -> bool:
    """Whether the deployment `values` describe answers with a GPT-Live agent by default."""
    return is_live_model(load_settings(values).directory.default_profile.model)


def importable(agent_file: str | Path) -> None:
    """Put the agent file's folder on `sys.path`, so its `tools_module` imports the way it does
    when `callbridge serve` runs next to it."""
    folder = str(Path(agent_file).resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)


@contextlib.asynccontextmanager
async def agent_stack(
    *,
    agent_file: str | Path | None = None,
    replies: Sequence[Reply | LiveReply] = (),
    env: Mapping[str, str] | None = None,
    fake_model: bool = True,
    **fake_options: Any,
) -> AsyncIterator[AgentStack]:
    """Start the fakes and the server; see the module docstring. `fake_options` go to the
    fake model's server (e.g. `user_transcripts`)."""
    auth_token = secrets.token_hex(16)
    account_sid = "AC" + secrets.token_hex(16)
    async with contextlib.AsyncExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="callbridge-")))
        model: FakeRealtimeServer | FakeLiveServer | None = None
        values = dict(env or {})
        if agent_file is not None:
            importable(agent_file)
            values["CALLBRIDGE_AGENT_FILE"] = str(agent_file)
        rest = await stack.enter_async_context(
            FakeTwilioRest(account_sid, auth_token, public_url=PUBLIC_URL))
        values.update({
            "CALLBRIDGE_PUBLIC_URL": PUBLIC_URL,
            "TWILIO_AUTH_TOKEN": auth_token,
            "TWILIO_ACCOUNT_SID": account_sid,
            "CALLBRIDGE_TWILIO_API_URL": rest.url,
            "CALLBRIDGE_CALLER_ID": CALLER_ID,
            "DATABASE_URL": f"sqlite:///{workdir / 'calls.db'}",
            "CALLBRIDGE_JOURNAL": str(workdir / "journal.jsonl"),
            "CALLBRIDGE_RECORDINGS_DIR": str(workdir / "recordings"),
        })
        if fake_model:
            values["OPENAI_API_KEY"] = "sk-local-fake"
            if _speaks_live(values):
                model = await stack.enter_async_context(
                    FakeLiveServer(live_script(replies) or [LiveReply()], **fake_options))
                values["CALLBRIDGE_LIVE_URL"] = model.url
            else:
                model = await stack.enter_async_context(FakeRealtimeServer(
                    realtime_script(replies) or [Reply()], **fake_options))
                values["CALLBRIDGE_OPENAI_URL"] = model.url
        settings = load_settings(values)
        assert settings.database_url is not None
        await upgrade_async(settings.database_url)
        app = create_app(settings)
        state: CallbridgeServer = app.state.callbridge
        state.calls.keep_finished = 100
        server = await stack.enter_async_context(running(app))
        rest.server_url = server.url
        yield AgentStack(server, state, settings, rest, model, auth_token)
