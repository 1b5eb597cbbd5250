"""Replayed stream tokens between instances WITHOUT a shared database. A token is single-use per
instance (each keeps the nonces it has redeemed until they expire), and self-verifying so the
media socket may land on any instance. With a shared PostgreSQL database the nonce is redeemed
once for all instances (tests/e2e/test_instances.py); these tests cover instances without one.

So across such instances it can be redeemed once more on every other instance within its lifetime
(CALLBRIDGE_STREAM_TOKEN_TTL, 30 s by default): whoever holds a captured TwiML response and a
media upgrade signature — which signs only the URL, so one captured upgrade fits every call —
can attach a second media stream to the same CallSid on another instance, which opens its own
upstream session. After the TTL every instance refuses it. These tests pin that behaviour;
docs/reliability.md describes the exposure; the fix is the shared database (docs/deploy.md).
The same-instance replay is covered by tests/e2e/test_call_flow.py.
"""

from __future__ import annotations

import asyncio

import pytest

from callbridge.server.app import create_app
from callbridge.server.runner import running
from callbridge.testing.fake_caller import FakeTwilioCaller
from tests.e2e.harness import AUTH_TOKEN, PUBLIC_URL, harness, stream_elsewhere
from tests.security.conftest import assert_nothing_leaked, warm_baseline

pytestmark = pytest.mark.e2e

GREETING = {"CALLBRIDGE_GREETING": "Hello there.", "CALLBRIDGE_STREAM_TOKEN_TTL": "2"}


async def test_a_stream_token_replayed_on_another_instance_within_its_ttl_is_admitted_there(
) -> None:
    """A used token replayed on another instance within its TTL is admitted there (known window)."""
    async with harness(env=GREETING) as a:
        b_app = create_app(a.state.settings)
        async with running(b_app) as b:
            caller = a.caller()
            twiml = await caller.dial()
            await caller.connect()
            await caller.wait_for_agent_audio(timeout=3.0)
            replay = await stream_elsewhere(b.url, caller, twiml)
            assert replay.closed_by_server_at is None
            assert b_app.state.callbridge.calls.get(caller.call_sid) is not None
            assert len(a.fake.connections) == 2, "one upstream session per instance"
            for each in (replay, caller):
                await each.hang_up()
                await each.aclose()


async def test_a_stream_token_replayed_after_its_ttl_is_refused_on_every_instance() -> None:
    """Past the TTL a token is worthless: a fresh instance that never saw it refuses it too."""
    async with harness(env=GREETING) as a:
        caller = a.caller()
        twiml = await caller.dial()
        await caller.connect()
        await caller.wait_for_agent_audio(timeout=3.0)
        await caller.hang_up()
        await caller.aclose()
        assert twiml.stream_url is not None
        await asyncio.sleep(3.1)  # the 2 s TTL (tokens expire on whole seconds) has passed
        c_app = create_app(a.state.settings)
        async with running(c_app) as c:
            c_state = c_app.state.callbridge
            baseline = await warm_baseline(a)
            replay = FakeTwilioCaller(c.url, PUBLIC_URL, AUTH_TOKEN, call_sid=caller.call_sid)
            await replay.connect(twiml.stream_url, parameters=twiml.parameters)
            await replay.wait_closed(timeout=3.0)
            assert replay.close_code == 1008
            assert replay.played_bytes == 0
            assert c_state.calls.get(caller.call_sid) is None
            await replay.aclose()
            await assert_nothing_leaked(a, baseline)
