"""Delegation on the fake GPT-Live server: Responses function calls and client commentary."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from callbridge.testing.fake_live import FakeLiveServer, LiveReply, LiveToolCall
from callbridge.testing.speech import speechlike
from tests.testing.live_client import LiveClient, live_session, responses_delegation

SPEED = 8.0
CALLER = speechlike(0.8, seed=4)
SLOTS = LiveToolCall("check_availability", {"date": "2026-12-01"}, call_id="call_slots")
PRICE = LiveToolCall("get_price", {"service": "cleaning"}, call_id="call_price")
TOOLS = [{"type": "function", "name": name, "strict": True, "parameters": {"type": "object"}}
         for name in ("check_availability", "get_price")]


def nested(client: LiveClient, event_type: str) -> list[dict[str, Any]]:
    """Backend events of a type, unwrapped from `response.event`."""
    return [e["event"] for e in client.of("response.event") if e["event"]["type"] == event_type]


def output(call_id: str, value: object) -> dict[str, Any]:
    return {"type": "response.item.create", "event_id": f"out_{call_id}",
            "item": {"type": "function_call_output", "call_id": call_id,
                     "output": json.dumps(value)}}



async def test_a_responses_delegation_streams_the_calls_then_speaks_the_backends_answer() -> None:
    """delegation.created → response.created, a reasoning item, the completed function call,
    response.completed (empty output, usage); one output and one response.create later the
    backend's text is spoken."""
    reply = LiveReply("You can come {outputs}.", tool_calls=(SLOTS,), filler="Let me check.")
    async with FakeLiveServer([reply], speed=SPEED) as server:
        delegation = responses_delegation(tools=TOOLS)
        async with live_session(server, delegation=delegation) as client:
            client.microphone(SPEED)
            client.say(CALLER)
            created = await client.next("session.delegation.created")
            completed = await client.next("response.event", count=4)
            await client.send(output("call_slots", "Tuesday at three"))
            await client.send({"type": "response.create", "event_id": "cont"})
            await server.wait_for(lambda: any(u.why == "backend" and u.done
                                              for u in server.spoken))
        kinds = [e["event"]["type"] for e in client.of("response.event")]
        assert kinds[:4] == ["response.created", "response.output_item.done",
                             "response.output_item.done", "response.completed"]
        assert kinds[4:] == ["response.created", "response.output_item.done",
                             "response.completed"]
        assert created["delegation"]["target"] == "responses"
        assert created["delegation"]["response_id"] == nested(client, "response.created")[0][
            "response"]["id"]
        assert {e["delegation_id"] for e in client.of("response.event")} == {
            created["delegation"]["id"]}
        call = nested(client, "response.output_item.done")[1]["item"]
        assert (call["type"], call["status"], call["call_id"]) == (
            "function_call", "completed", "call_slots")
        assert json.loads(call["arguments"]) == {"date": "2026-12-01"}
        done = completed["event"]["response"]
        assert done["output"] == []
        assert done["usage"]["output_tokens"] > 0
        assert [(u.why, u.transcript) for u in server.spoken] == [
            ("filler", "Let me check."), ("backend", 'You can come "Tuesday at three".')]
        assert server.sessions[0].function_outputs == {"call_slots": '"Tuesday at three"'}
        assert server.unanswered_delegations == []
        assert server.violations == []
        assert client.problems == []


async def test_response_create_is_refused_while_any_call_is_open_anywhere() -> None:
    """Two parallel calls: `response.create` after one output is `function_call_outputs_required`
    (a violation); after both outputs the one `response.create` continues."""
    reply = LiveReply("Done: {outputs}", tool_calls=(SLOTS, PRICE))
    async with FakeLiveServer([reply], speed=SPEED) as server:
        async with live_session(server, delegation=responses_delegation(tools=TOOLS)) as client:
            client.microphone(SPEED)
            client.say(CALLER)
            await client.next("response.event", count=5)
            await client.send(output("call_slots", "Tue"))
            await client.send({"type": "response.create", "event_id": "early"})
            refused = await client.next("error")
            await client.send(output("call_price", 80))
            await client.send({"type": "response.create", "event_id": "ok"})
            await server.wait_for(lambda: any(u.why == "backend" for u in server.spoken))
        assert refused["error"]["code"] == "function_call_outputs_required"
        assert refused["error"]["client_event_id"] == "early"
        assert server.spoken[-1].text == 'Done: "Tue"; 80'
        assert len(server.violations) == 1
        assert server.sessions[0].response_creates == 2


async def test_the_barrier_spans_delegations_and_late_turns_reuse_the_backend() -> None:
    """A call from an earlier delegation still open blocks the continuation of a later one."""
    replies = [LiveReply("A {outputs}", tool_calls=(SLOTS,)),
               LiveReply("B {outputs}", tool_calls=(PRICE,))]
    async with FakeLiveServer(replies, speed=SPEED) as server:
        async with live_session(server, delegation=responses_delegation(tools=TOOLS)) as client:
            client.microphone(SPEED)
            client.say(CALLER)
            await client.next("response.event", count=4)
            client.say(CALLER)
            await client.next("response.event", count=8)
            await client.send(output("call_price", 1))
            await client.send({"type": "response.create"})
            await client.next("error")
            await client.send(output("call_slots", 2))
            await client.send({"type": "response.create"})
            await server.wait_for(lambda: sum(u.why == "backend" for u in server.spoken) == 2)
        assert [e["error"]["code"] for e in client.of("error")] == [
            "function_call_outputs_required"]
        assert sorted(u.text for u in server.spoken if u.why == "backend") == ["A 2", "B 1"]
        assert len(server.delegations) == 2
        assert server.unanswered_delegations == []


async def test_a_failed_backend_response_discards_its_calls() -> None:
    """`response.failed` inside `response.event`; an output for its call is refused (not a
    violation: it can cross the failure), and the model apologises."""
    reply = LiveReply("Sorry, that did not work.", tool_calls=(SLOTS,), backend_fails=True)
    async with FakeLiveServer([reply], speed=SPEED) as server:
        async with live_session(server, delegation=responses_delegation(tools=TOOLS)) as client:
            client.microphone(SPEED)
            client.say(CALLER)
            failed = await client.next("response.event", count=4)
            await client.send(output("call_slots", "late"))
            refused = await client.next("error")
            await server.wait_for(lambda: bool(server.spoken) and server.spoken[0].done)
        assert failed["event"]["type"] == "response.failed"
        assert failed["event"]["response"]["status"] == "failed"
        assert refused["error"]["code"] == "invalid_value"
        assert server.spoken[0].why == "apology"
        assert server.violations == []
        assert server.unanswered_delegations == []
        assert client.problems == []


async def test_an_unknown_call_id_or_a_second_output_is_a_violation() -> None:
    """Outputs must answer a call the backend made, once."""
    async with FakeLiveServer([LiveReply(tool_calls=(SLOTS,))], speed=SPEED) as server:
        async with live_session(server, delegation=responses_delegation(tools=TOOLS)) as client:
            client.microphone(SPEED)
            client.say(CALLER)
            await client.next("response.event", count=4)
            await client.send(output("call_nope", 1))
            await client.send(output("call_slots", 1))
            await client.send(output("call_slots", 1))
            await client.next("error", count=2)
        assert len(server.violations) == 2
        assert [d.open_calls for d in server.delegations] == [[]]
        assert server.unanswered_delegations == server.delegations  # never continued


async def test_a_client_delegation_is_spoken_from_the_commentary_with_its_id() -> None:
    """Client mode: `session.delegation.created` (target client); commentary with that id is
    acknowledged and spoken; a delegation nobody answers is reported."""
    replies = [LiveReply(delegate=True), LiveReply(delegate=True)]
    async with FakeLiveServer(replies, speed=SPEED) as server:
        async with live_session(server, delegation={"type": "client"}) as client:
            client.microphone(SPEED)
            client.say(CALLER)
            created = await client.next("session.delegation.created")
            delegation_id = created["delegation"]["id"]
            await client.send({"type": "session.thinking.append", "delegation_id": delegation_id,
                               "content": "Still looking."})
            await client.send({"type": "session.commentary.append", "event_id": "ans",
                               "delegation_id": delegation_id,
                               "content": "Tuesday at three is free."})
            ack = await client.next("session.commentary.appended")
            await server.wait_for(lambda: bool(server.spoken) and server.spoken[0].done)
            client.say(CALLER)
            await client.next("session.delegation.created", count=2)
            await asyncio.sleep(0.1)
        assert created["delegation"]["target"] == "client"
        assert ack["client_event_id"] == "ans"
        assert server.spoken[0].transcript == "Tuesday at three is free."
        assert server.delegations[0].answers == ["Tuesday at three is free."]
        assert server.unanswered_delegations == [server.delegations[1]]
        assert server.violations == []


async def test_commentary_for_an_unknown_delegation_or_under_responses_is_refused() -> None:
    """A non-null delegation_id must name a client delegation of this session."""
    async with FakeLiveServer(speed=SPEED) as server:
        async with live_session(server, delegation=responses_delegation()) as client:
            await client.send({"type": "session.commentary.append", "delegation_id": "del_x",
                               "content": "hi"})
            await client.send({"type": "response.create"})
            await client.next("error")
        async with live_session(server) as client:
            await client.send({"type": "session.commentary.append", "delegation_id": "del_x",
                               "content": "hi"})
            await client.send({"type": "response.create"})
            await client.next("error", count=2)
        assert len(server.violations) == 3


async def test_thinking_appended_before_the_acknowledgement_delay_cancels_the_filler() -> None:
    """The automatic acknowledgement waits `acknowledgement_delay_ms`; thinking cancels it."""
    replies = [LiveReply(delegate=True, filler="One moment.")]
    async with FakeLiveServer(replies * 2, speed=SPEED) as server:
        delegation = {"type": "client", "acknowledgement_delay_ms": 2000}
        async with live_session(server, delegation=delegation) as client:
            client.microphone(SPEED)
            client.say(CALLER)
            created = await client.next("session.delegation.created")
            await client.send({"type": "session.thinking.append", "content": "Working.",
                               "delegation_id": created["delegation"]["id"]})
            client.say(CALLER)
            await client.next("session.delegation.created", count=2)
            await server.wait_for(lambda: len(server.spoken) == 1 and server.spoken[0].done)
        assert [u.why for u in server.spoken] == ["filler"]
        assert server.spoken[0].start_ms is not None
        # 2 s of delay at speed 8 is 250 ms of wall time; the microphone may lag under load.
        assert server.spoken[0].start_ms >= server.delegations[1].offset_ms + 1000
