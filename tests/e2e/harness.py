"""The whole path over real loopback sockets: fake Twilio caller → our server → fake Realtime."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from callbridge.config import load_settings
from callbridge.server.app import CallbridgeServer, create_app
from callbridge.server.runner import RunningServer, running
from callbridge.testing.fake_caller import FakeTwilioCaller, TwiMLResult
from callbridge.testing.fake_realtime import FakeRealtimeServer, Reply
from callbridge.testing.fake_twilio_rest import FakeTwilioRest

PUBLIC_URL = "https://voice.example.test"
AUTH_TOKEN = "test-auth-token"


ACCOUNT_SID = "AC" + "5" * 32


@dataclass
class Harness:
    fake: FakeRealtimeServer
    server: RunningServer
    state: CallbridgeServer
    rest: FakeTwilioRest | None = None

    def caller(self, **options: Any) -> FakeTwilioCaller:
        if self.rest is not None:  # a call Twilio's API knows, so a REST hang-up ends it
            return self.rest.inbound_caller(**options)
        return FakeTwilioCaller(self.server.url, PUBLIC_URL, AUTH_TOKEN, **options)

    def bridge_of(self, caller: FakeTwilioCaller) -> Any:
        calls = self.state.calls
        live = calls.get(caller.call_sid)
        if live is not None:
            return live
        return next(b for b in calls.finished_calls if b.call_sid == caller.call_sid)


@contextlib.asynccontextmanager
async def harness(
    replies: list[Reply] | None = None,
    *,
    env: dict[str, str] | None = None,
    database_url: str = "none",
    twilio_rest: bool = False,
    **fake_options: Any,
) -> AsyncIterator[Harness]:
    async with contextlib.AsyncExitStack() as stack:
        fake = await stack.enter_async_context(
            FakeRealtimeServer(replies or [Reply()], **fake_options))
        server, state, rest = await serve_in(stack, {
            "CALLBRIDGE_OPENAI_URL": fake.url, "DATABASE_URL": database_url, **(env or {})},
            twilio_rest=twilio_rest)
        yield Harness(fake, server, state, rest)


async def serve_in(stack: contextlib.AsyncExitStack, env: dict[str, str], *,
                   twilio_rest: bool) -> tuple[RunningServer, CallbridgeServer,
                                               FakeTwilioRest | None]:
    """Our server in-process on a free port, configured by `env` (its upstream among it), and
    with `twilio_rest` a fake Twilio REST API it calls; all closed with `stack`."""
    rest = None
    rest_env: dict[str, str] = {}
    if twilio_rest:
        rest = await stack.enter_async_context(
            FakeTwilioRest(ACCOUNT_SID, AUTH_TOKEN, public_url=PUBLIC_URL))
        rest_env = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "CALLBRIDGE_TWILIO_API_URL": rest.url,
                    "CALLBRIDGE_CALLER_ID": "+15550009999"}
    settings = load_settings({
        "CALLBRIDGE_PUBLIC_URL": PUBLIC_URL, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "OPENAI_API_KEY": "sk-test", "DATABASE_URL": "none", **rest_env, **env,
    })
    app = create_app(settings)
    state: CallbridgeServer = app.state.callbridge
    state.calls.keep_finished = 100
    server = await stack.enter_async_context(running(app))
    if rest is not None:
        rest.server_url = server.url
    return server, state, rest


async def connected_call(h: Harness, **options: Any) -> FakeTwilioCaller:
    caller = h.caller(**options)
    await caller.dial()
    await caller.connect()
    return caller


async def stream_elsewhere(server_url: str, dialed: FakeTwilioCaller,
                           twiml: TwiMLResult) -> FakeTwilioCaller:
    """The media socket of `dialed`'s call opened on another instance (webhook on one, stream
    on another, as behind a load balancer), once the agent is heard there."""
    assert twiml.stream_url is not None
    caller = FakeTwilioCaller(server_url, PUBLIC_URL, AUTH_TOKEN, call_sid=dialed.call_sid)
    await caller.connect(twiml.stream_url, parameters=twiml.parameters)
    await caller.wait_for_agent_audio(timeout=3.0)
    return caller


async def metrics(url: str) -> dict[str, float]:
    """The server's `GET /metrics`, each sample by its name and labels as exposed."""
    async with httpx.AsyncClient(trust_env=False) as client:
        text = (await client.get(f"{url}/metrics")).text
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


async def read_sse(client: httpx.AsyncClient, path: str,
                   events: list[tuple[str, dict[str, Any]]], **headers: str) -> int:
    """Follow the Server-Sent Events at `path` into `events` (type, data) until the stream
    ends; its status (a refusal is not read)."""
    async with client.stream("GET", path, headers=headers) as response:
        if response.status_code != 200:
            return response.status_code
        kind = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[6:])))
        return response.status_code
