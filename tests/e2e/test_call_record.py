"""Every call on the record, over real sockets, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from twilio.request_validator import RequestValidator

from callbridge.testing.fake_realtime import Reply
from callbridge.testing.speech import speechlike
from tests.e2e.harness import AUTH_TOKEN, PUBLIC_URL, Harness, connected_call, harness

pytestmark = pytest.mark.e2e

API_TOKEN = "api-secret"
GREETING = "Thanks for calling, how can I help?"


def recorded_harness(database_url: str, tmp_path: Path, **options: Any) -> Any:
    env = {"CALLBRIDGE_API_TOKEN": API_TOKEN, "CALLBRIDGE_GREETING": GREETING,
           "CALLBRIDGE_JOURNAL": str(tmp_path / "journal.jsonl"),
           "CALLBRIDGE_INSTANCE_ID": "test-instance", **options.pop("env", {})}
    return harness(options.pop("replies", [Reply(text="We open at nine.")]),
                   env=env, database_url=database_url, **options)


async def api(h: Harness, path: str, token: str | None = API_TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=h.server.url, trust_env=False) as client:
        return await client.get(path, headers=headers)


async def post_status(h: Harness, params: dict[str, str]) -> httpx.Response:
    signature = RequestValidator(AUTH_TOKEN).compute_signature(f"{PUBLIC_URL}/twilio/status",
                                                               params)
    async with httpx.AsyncClient(base_url=h.server.url, trust_env=False) as client:
        return await client.post("/twilio/status", data=params,
                                 headers={"X-Twilio-Signature": signature})


async def settle(h: Harness) -> None:
    assert h.state.writer is not None
    await h.state.writer.flush()


async def test_a_simulated_call_is_recorded_exactly(database_url: str, tmp_path: Path) -> None:
    """Greeting, one caller turn, one reply: the API returns exactly that call."""
    async with recorded_harness(database_url, tmp_path,
                                user_transcripts=["When do you open?"]) as h:
        async with await connected_call(h) as caller:
            await caller.wait_for_agent_audio(timeout=3.0)
            await caller.wait_until_agent_quiet(quiet_for=0.5, timeout=10.0)
            await caller.say(speechlike(1.0, seed=2))
            await caller.wait_for_agent_audio(timeout=5.0, after=caller.spoken_until)
            await caller.wait_until_agent_quiet(quiet_for=0.5, timeout=10.0)
            await caller.hang_up()
        await asyncio.wait_for(h.bridge_of(caller).finished.wait(), 3.0)
        await settle(h)
        response = await api(h, f"/api/calls/{caller.call_sid}")
    assert response.status_code == 200
    call = response.json()
    assert {k: call[k] for k in ("call_sid", "direction", "from_number", "to_number", "agent",
                                 "status", "model", "voice", "end_reason", "instance")} == {
        "call_sid": caller.call_sid, "direction": "inbound", "from_number": "+15550001111",
        "to_number": "+15550002222", "agent": "default", "status": "completed",
        "model": "gpt-realtime-2.1", "voice": "marin", "end_reason": "caller hung up",
        "instance": "test-instance",
    }
    assert call["answered_at"] is not None
    assert call["ended_at"] is not None
    assert call["stream_sid"] == caller.stream_sid
    assert [(t["role"], t["heard"], t["interrupted"]) for t in call["transcript"]] == [
        ("agent", GREETING, False),
        ("caller", "When do you open?", False),
        ("agent", "We open at nine.", False),
    ]
    starts = [t["started_ms"] for t in call["transcript"]]
    assert starts == sorted(starts)
    assert all(t["ended_ms"] >= t["started_ms"] for t in call["transcript"])
    assert len(call["usage"]["responses"]) == 2
    assert call["usage"]["totals"]["output_audio_tokens"] > 0
    assert call["cost_usd"] == pytest.approx(call["usage"]["totals"]["cost_usd"])
    assert call["cost_usd"] > 0
    kinds = [e["kind"] for e in call["events"]]
    assert kinds[-1] == "call_stats"
    assert "upstream_ready" in kinds
    assert call["latency"]["turns"] == 1, "one caller turn answered (the greeting is not one)"
    assert call["latency"]["p50_ms"] >= 500, "at least the VAD's 500 ms of silence"


async def test_duplicate_webhooks_and_sockets_make_one_call(database_url: str,
                                                            tmp_path: Path) -> None:
    """Twilio retries the webhook and opens a second socket: one row, one live call."""
    async with recorded_harness(database_url, tmp_path) as h:
        caller = h.caller()
        first = await caller.dial()
        second = await caller.dial()
        assert first.parameters["token"] != second.parameters["token"]
        await caller.connect()
        await caller.wait_for_agent_audio(timeout=3.0)
        duplicate = h.caller(call_sid=caller.call_sid)
        assert second.stream_url is not None
        await duplicate.connect(second.stream_url, parameters=second.parameters)
        await duplicate.wait_closed(timeout=3.0)
        assert duplicate.closed_by_server_at is not None
        assert caller.closed_by_server_at is None, "the live call is untouched"
        await caller.hang_up()
        await asyncio.wait_for(h.bridge_of(caller).finished.wait(), 3.0)
        await settle(h)
        listing = (await api(h, "/api/calls")).json()
        await caller.aclose()
        await duplicate.aclose()
    assert [c["call_sid"] for c in listing["calls"]] == [caller.call_sid]
    assert len(h.fake.connections) == 1, "one upstream session for the call"


async def test_status_callbacks_out_of_order_end_completed(database_url: str,
                                                           tmp_path: Path) -> None:
    """completed, then a late ringing and in-progress: the call stays completed."""
    async with recorded_harness(database_url, tmp_path) as h:
        sid = "CA" + "7" * 32
        base = {"CallSid": sid, "AccountSid": "AC" + "0" * 32, "From": "+15550001111",
                "To": "+15550002222", "Direction": "outbound-api"}
        for status, extra in (("completed", {"CallDuration": "42"}), ("ringing", {}),
                              ("in-progress", {})):
            response = await post_status(h, {**base, "CallStatus": status, **extra})
            assert response.status_code == 204
        await settle(h)
        call = (await api(h, f"/api/calls/{sid}")).json()
        async with httpx.AsyncClient(base_url=h.server.url, trust_env=False) as client:
            refused = await client.post("/twilio/status", data={**base, "CallStatus": "failed"},
                                        headers={"X-Twilio-Signature": "bogus"})
    assert refused.status_code == 403
    assert (call["status"], call["duration_s"], call["direction"]) == ("completed", 42.0,
                                                                       "outbound-api")


async def test_the_api_requires_its_bearer_token(database_url: str, tmp_path: Path) -> None:
    """No token or a wrong one: 401; a missing call: 404; bad filters: 400."""
    async with recorded_harness(database_url, tmp_path) as h:
        assert (await api(h, "/api/calls", token=None)).status_code == 401
        assert (await api(h, "/api/calls", token="wrong")).status_code == 401
        assert (await api(h, "/api/calls/CA_missing")).status_code == 404
        assert (await api(h, "/api/calls?since=yesterday")).status_code == 400
        assert (await api(h, "/api/calls?limit=0")).status_code == 400
        assert (await api(h, "/api/calls?status=completed")).json() == {
            "calls": [], "next_before": None}
