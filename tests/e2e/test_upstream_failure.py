"""When OpenAI fails mid-call: reconnect with the conversation restored, or apologise promptly."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from callbridge.core.twiml import DEFAULT_APOLOGY
from callbridge.testing.fake_realtime import FakeConnection, Reply
from callbridge.testing.speech import speechlike
from tests.e2e.harness import connected_call, harness

pytestmark = pytest.mark.e2e


def created_items(connection: FakeConnection) -> list[dict[str, Any]]:
    return [e["item"] for e in connection.client_events if e["type"] == "conversation.item.create"]


async def test_a_drop_mid_response_is_recovered_with_the_history_restored() -> None:
    """The socket dies mid-reply: a new session gets the conversation and the agent carries on."""
    replies = [Reply(text="Let me check our opening hours for you today.",
                     audio=speechlike(3.0, seed=7))]
    async with harness(replies, speed=2.0, user_transcripts=["When are you open?"]) as h:
        async with await connected_call(h) as caller:
            h.fake.drop_when("response.output_audio.delta", nth=5)
            await caller.say(speechlike(0.8, seed=1))
            await h.fake.wait_for(lambda: len(h.fake.connections) == 2, timeout=5.0)
            await h.fake.wait_for_event("response.create", timeout=5.0)
            await caller.wait_until_agent_quiet(quiet_for=0.6, timeout=15.0)
            items = created_items(h.fake.connections[1])
            assert items[0] == {"type": "message", "role": "user",
                                "content": [{"type": "input_text", "text": "When are you open?"}]}
            assert items[1]["role"] == "assistant"
            assert caller.fallback_said == []
            assert caller.closed_by_server_at is None
            # the conversation goes on over the new session
            await caller.say(speechlike(0.6, seed=2))
            await caller.wait_for_agent_audio(timeout=5.0, after=caller.spoken_until)
            await caller.hang_up()
        bridge = h.bridge_of(caller)
        assert bridge.notes["upstream_lost"] == 1
        assert bridge.notes["upstream_restored"] == 1
        greetings = [e for c in h.fake.connections for e in c.client_events
                     if e["type"] == "response.create" and "response" in e]
        assert greetings == [], "no second greeting after a reconnect"
        assert h.fake.violations == []
        assert caller.violations == []


async def test_session_expiry_is_a_reconnect_not_the_end_of_the_call() -> None:
    """The server's 1001 session cap is handled like a drop: the call keeps going."""
    async with harness([Reply(text="Sure.")], session_max_seconds=1.5) as h:
        async with await connected_call(h) as caller:
            await h.fake.wait_for(lambda: len(h.fake.connections) >= 2, timeout=5.0)
            await caller.say(speechlike(0.6, seed=3))
            await caller.wait_for_agent_audio(timeout=5.0, after=caller.spoken_until)
            assert caller.closed_by_server_at is None
            await caller.hang_up()


async def test_a_spent_reconnect_budget_ends_the_stream_with_the_apology() -> None:
    """Five failed reconnects (0.2 … 3.2 s): the stream ends and Twilio's apology plays at once."""
    async with harness() as h:
        async with await connected_call(h) as caller:
            await h.fake.wait_for(lambda: len(h.fake.connections) == 1, timeout=3.0)
            h.fake.reject_next(10)
            loop = asyncio.get_running_loop()
            dropped = loop.time()
            await h.fake.drop_all()
            await h.fake.wait_for(lambda: h.fake.handshake_attempts == 6, timeout=10.0)
            last_attempt = loop.time()
            await caller.wait_closed(timeout=3.0)
            assert loop.time() - last_attempt < 0.6
            assert 6.2 <= last_attempt - dropped < 9.0
            assert caller.fallback_said == [DEFAULT_APOLOGY]
            bridge = h.bridge_of(caller)
            await asyncio.wait_for(bridge.finished.wait(), 2.0)
            assert bridge.notes["upstream_gave_up"] == 1


async def test_upstream_error_events_do_not_end_the_call() -> None:
    """A server_error event is logged and counted; the conversation continues."""
    async with harness([Reply(text="Yes.")]) as h:
        async with await connected_call(h) as caller:
            await h.fake.wait_for(lambda: len(h.fake.connections) == 1, timeout=3.0)
            await h.fake.wait_for_event("session.update", timeout=3.0)
            await h.fake.send_error("server_error", "The server had an error", "server_error")
            await caller.say(speechlike(0.6, seed=4))
            await caller.wait_for_agent_audio(timeout=5.0, after=caller.spoken_until)
            assert h.bridge_of(caller).session.stats.upstream_errors == 1
            await caller.hang_up()


async def test_the_session_is_recycled_before_its_cap_without_the_caller_noticing() -> None:
    """CALLBRIDGE_SESSION_RECYCLE_S=2: a second session, seeded, and the call goes on."""
    replies = [Reply(text="Sure, what time?", audio=speechlike(0.8, seed=31))]
    async with harness(replies, env={"CALLBRIDGE_SESSION_RECYCLE_S": "2"},
                       user_transcripts=["A table for two", "At eight"]) as h:
        async with await connected_call(h) as caller:
            await caller.say(speechlike(0.8, seed=32))
            await caller.wait_for_agent_audio(timeout=5.0, after=caller.spoken_until)
            await caller.wait_until_agent_quiet(quiet_for=0.3, timeout=5.0)
            await h.fake.wait_for(lambda: len(h.fake.connections) == 2, timeout=5.0)
            await h.fake.wait_for_event("conversation.item.create", timeout=5.0)
            await caller.say(speechlike(0.8, seed=33))
            await caller.wait_for_agent_audio(timeout=5.0, after=caller.spoken_until)
            await caller.hang_up()
        second = h.fake.connections[1]
        items = created_items(second)
        assert items[0]["content"][0]["text"] == "A table for two"
        assert items[1]["role"] == "assistant"
        assert h.bridge_of(caller).notes["upstream_recycle"] >= 1
        assert caller.fallback_said == []
        assert h.fake.violations == []
