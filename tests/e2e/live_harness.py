"""The whole path on GPT-Live: fake Twilio caller → our server → fake GPT-Live, real sockets."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from callbridge.server.app import CallbridgeServer
from callbridge.server.runner import RunningServer
from callbridge.testing.fake_caller import FakeTwilioCaller
from callbridge.testing.fake_live import FakeLiveServer, LiveReply
from callbridge.testing.fake_twilio_rest import FakeTwilioRest
from tests.e2e.harness import AUTH_TOKEN, PUBLIC_URL, serve_in

LIVE_MODEL = "gpt-live-1.1"


@dataclass
class LiveHarness:
    fake: FakeLiveServer
    server: RunningServer
    state: CallbridgeServer
    rest: FakeTwilioRest | None = None

    def caller(self, server_url: str | None = None, **options: Any) -> FakeTwilioCaller:
        if self.rest is not None:
            return self.rest.inbound_caller(**options)
        return FakeTwilioCaller(server_url or self.server.url, PUBLIC_URL, AUTH_TOKEN,
                                **options)

    def bridge_of(self, caller: FakeTwilioCaller) -> Any:
        live = self.state.calls.get(caller.call_sid)
        if live is not None:
            return live
        return next(b for b in self.state.calls.finished_calls
                    if b.call_sid == caller.call_sid)


@contextlib.asynccontextmanager
async def live_harness(replies: list[LiveReply] | None = None, *,
                       env: dict[str, str] | None = None, twilio_rest: bool = False,
                       **fake_options: Any) -> AsyncIterator[LiveHarness]:
    """Our server with a GPT-Live agent (`CALLBRIDGE_MODEL=gpt-live-1.1`) against the fake."""
    async with contextlib.AsyncExitStack() as stack:
        fake = await stack.enter_async_context(
            FakeLiveServer(replies or [LiveReply()], strict=True, **fake_options))
        server, state, rest = await serve_in(stack, {
            "CALLBRIDGE_LIVE_URL": fake.url, "CALLBRIDGE_MODEL": LIVE_MODEL, **(env or {})},
            twilio_rest=twilio_rest)
        yield LiveHarness(fake, server, state, rest)
