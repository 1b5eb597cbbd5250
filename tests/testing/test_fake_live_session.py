"""The fake GPT-Live server's handshake, `session.start`, strict validation and session end."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from callbridge.testing.fake_live import FakeLiveServer
from tests.testing.live_client import (
    AUTH,
    MODEL,
    PCMU,
    connected,
    live_session,
    responses_delegation,
    start_event,
)


async def test_handshake_refuses_query_strings_missing_keys_and_other_paths() -> None:
    """A model in the URL is `invalid_model` (400), no bearer is 401, another path is 404."""
    async with FakeLiveServer() as server:
        cases = [
            (f"{server.url}?model={MODEL}", AUTH, 400),
            (server.url, {}, 401),
            (server.url.replace("/live/sessions", "/realtime"), AUTH, 404),
        ]
        for url, headers, status in cases:
            with pytest.raises(InvalidStatus) as refused:
                await connect(url, additional_headers=headers)
            assert refused.value.response.status_code == status
        assert b"invalid_model" in (await _refusal_body(server, f"{server.url}?model={MODEL}"))
        assert len(server.violations) == 4


async def _refusal_body(server: FakeLiveServer, url: str) -> bytes:
    with pytest.raises(InvalidStatus) as refused:
        await connect(url, additional_headers=AUTH)
    return refused.value.response.body


async def test_reject_next_refuses_that_many_handshakes_then_accepts() -> None:
    """`reject_next(1)` answers one handshake with 503; the next connects."""
    async with FakeLiveServer() as server:
        server.reject_next(1)
        with pytest.raises(InvalidStatus):
            await connect(server.url, additional_headers=AUTH)
        async with live_session(server) as client:
            assert client.of("session.started")
        assert server.handshake_attempts == 2
        assert server.violations == []


async def test_session_started_carries_the_resolved_session_resource() -> None:
    """`session.started` echoes the event id and resolves id, expiry, audio and delegation."""
    async with FakeLiveServer(expires_in_s=600) as server:
        async with live_session(server) as client:
            started = client.of("session.started")[0]
        resource = started["session"]
        assert started["client_event_id"] == "evt_start"
        assert resource["id"].startswith("live_")
        assert resource["status"] == "active"
        assert resource["audio"] == {"format": PCMU, "output": {"voice": "marin"}}
        assert resource["delegation"] == {"type": "client", "acknowledgement_delay_ms": 0}
        assert resource["model"] == MODEL
        assert resource["expires_at"] > 0
        assert client.problems == []
        assert server.violations == []
        assert server.sessions[0].session_id == resource["id"]


async def test_anything_before_session_start_is_an_error_and_the_socket_closes() -> None:
    """Audio before `session.start` gets `error` and a close; it is a recorded violation."""
    async with FakeLiveServer() as server:
        async with connected(server) as client:
            await client.send({"type": "session.input_audio.append", "audio": "//8="})
            error = await client.next("error")
            assert error["error"]["code"] == "session_not_started"
            assert await client.closed() == 1008
        assert not client.of("session.started")
        assert len(server.violations) == 1


@pytest.mark.parametrize(
    ("change", "code", "param"),
    [
        ({"temperature": 0.8}, "unknown_parameter", "session.temperature"),
        ({"audio": {"format": {**PCMU, "channels": 1}}}, "unknown_parameter",
         "session.audio.format.channels"),
        ({"delegation": responses_delegation(tools=[{"type": "function", "name": "f",
                                                     "parameters": {}, "strict": True,
                                                     "secret": 1}])},
         "unknown_parameter", "session.delegation.responses.tools[0].secret"),
        ({"audio": {"format": {"type": "audio/pcm", "rate": 24000}}}, "unsupported_by_fake",
         "session.audio.format"),
        ({"audio": {"format": {"type": "audio/pcmu", "rate": 16000}}}, "invalid_value",
         "session.audio.format.rate"),
        ({"audio": {"format": PCMU, "output": {"voice": "nova"}}}, "forbidden",
         "session.audio.output.voice"),
        ({"model": "gpt-realtime-2.1"}, "invalid_model", "session.model"),
        ({"input": [{"role": "user", "content": [{"text": "a"}, {"text": "b"}]}]},
         "invalid_value", "session.input[0].content"),
    ],
)
async def test_a_bad_session_start_is_refused_before_the_session_starts(
    change: dict[str, object], code: str, param: str
) -> None:
    """Unknown fields anywhere, formats the fake cannot play, bad voices and models: an `error`
    with the API's code and param, no `session.started`, the socket closed."""
    async with FakeLiveServer() as server:
        async with connected(server) as client:
            event = start_event()
            event["session"].update(change)
            await client.send(event)
            error = (await client.next("error"))["error"]
            assert (error["code"], error.get("param")) == (code, param)
            assert error["client_event_id"] == "evt_start"
            assert await client.closed() == 1008
        assert not client.of("session.started")
        assert len(server.violations) == 1


async def test_unknown_fields_and_missing_delegation_ids_after_start_are_non_fatal() -> None:
    """Once started, a bad event gets a non-fatal `error`; the session goes on."""
    async with FakeLiveServer(speed=8) as server:
        async with live_session(server) as client:
            await client.send({"type": "session.thinking.append", "content": "x",
                               "delegation_id": None, "priority": "high"})
            await client.send({"type": "session.thinking.append", "content": "x"})
            await client.send({"type": "session.input_audio.mute", "event_id": "m1"})
            assert (await client.next("session.input_audio.muted"))["client_event_id"] == "m1"
            codes = [(e["error"]["code"], e["error"]["param"]) for e in client.of("error")]
            assert not server.sessions[0].closed
        assert codes == [("unknown_parameter", "priority"),
                         ("missing_required_parameter", "delegation_id")]
        assert len(server.violations) == 2


async def test_a_second_session_start_and_unsupported_events_get_errors() -> None:
    """`session.start` twice is a violation; Decisions are not faked (an error, no violation)."""
    async with FakeLiveServer() as server:
        async with live_session(server) as client:
            await client.send(start_event())
            await client.send({"type": "decision.create", "event_id": "d1"})
            await client.next("error", count=2)
            codes = [e["error"]["code"] for e in client.of("error")]
        assert codes == ["session_already_started", "unsupported_by_fake"]
        assert len(server.violations) == 1


async def test_session_update_changes_delegation_settings_but_never_its_type() -> None:
    """A same-type update is acknowledged with the full resource; a type change is refused."""
    delegation = responses_delegation(instructions="old")
    async with FakeLiveServer() as server:
        async with live_session(server, delegation=delegation) as client:
            await client.send({"type": "session.update", "session": {"delegation": {
                "type": "responses", "responses": {"model": "gpt-5.6-terra",
                                                   "instructions": "new"}}}})
            updated = await client.next("session.updated")
            await client.send({"type": "session.update",
                               "session": {"delegation": {"type": "client"}}})
            error = await client.next("error")
        assert updated["session"]["delegation"]["responses"]["instructions"] == "new"
        assert error["error"]["code"] == "immutable_field_update"


async def test_session_close_answers_session_closed_with_usage_then_closes() -> None:
    """`session.close` → `session.closed` (close_requested, seconds used, the session) → 1000."""
    async with FakeLiveServer() as server:
        async with live_session(server) as client:
            await client.send({"type": "session.close", "event_id": "bye"})
            closed = await client.next("session.closed")
            assert await client.closed() == 1000
        assert closed["reason"] == "close_requested"
        assert closed["client_event_id"] == "bye"
        assert closed["usage"]["seconds"] >= 0
        assert closed["session"]["id"].startswith("live_")
        assert server.sessions[0].closed_reason == "close_requested"


async def test_usage_is_reported_cumulatively_at_the_configured_cadence() -> None:
    """`session.usage.updated` every `usage_interval_s`, its seconds growing."""
    async with FakeLiveServer(usage_interval_s=0.1) as server:
        async with live_session(server) as client:
            second = await client.next("session.usage.updated", count=2)
            first = client.of("session.usage.updated")[0]
        assert 0 < first["usage"]["seconds"] < second["usage"]["seconds"]


async def test_the_session_expires_at_its_configured_time() -> None:
    """The server ends the session itself: `session.closed` with reason `expired`."""
    async with FakeLiveServer(expires_in_s=0.3) as server:
        async with live_session(server) as client:
            expires_at = client.of("session.started")[0]["session"]["expires_at"]
            closed = await client.next("session.closed")
            assert await client.closed() == 1000
        assert closed["reason"] == "expired"
        assert expires_at > 0


def test_importing_the_fake_imports_neither_the_core_nor_the_server() -> None:
    """The fake judges `callbridge.core` and `callbridge.server`, so it must not use them."""
    code = (
        "import sys, json, callbridge.testing.fake_live, callbridge.testing.live_validation;"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('callbridge'))))"
    )
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], check=True,
                                       capture_output=True, text=True).stdout)
    assert not [m for m in loaded if m.startswith(("callbridge.core", "callbridge.server"))]


async def test_bad_audio_binary_frames_and_bad_json_get_non_fatal_errors() -> None:
    """Audio that is not base64, a binary frame or broken JSON: an error each, session goes on."""
    async with FakeLiveServer() as server:
        async with live_session(server) as client:
            await client.send({"type": "session.input_audio.append", "audio": "not base64!"})
            await client.ws.send(b"\x00\x01")
            await client.ws.send("{nope")
            await client.next("error", count=3)
            await client.send({"type": "session.input_audio.mute"})
            await client.next("session.input_audio.muted")
        codes = [e["error"]["code"] for e in client.of("error")]
        assert codes == ["invalid_value", "invalid_value", "invalid_json"]
        assert len(server.violations) == 3
