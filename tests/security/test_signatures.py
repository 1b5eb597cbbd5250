"""Forged and misdirected signatures on webhooks and on the media socket upgrade are refused with
403 before any work (no call, no upstream session, nothing left open); replayed webhooks, which
Twilio's signature cannot tell apart from retries, reuse the live call.

Unsigned webhooks and upgrades are covered by tests/e2e/test_call_flow.py.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.e2e.harness import AUTH_TOKEN, PUBLIC_URL, harness
from tests.security.conftest import assert_nothing_leaked, warm_baseline

pytestmark = pytest.mark.e2e

CALL = {"CallSid": "CA" + "a" * 32, "AccountSid": "AC" + "b" * 32, "From": "+15550001111",
        "To": "+15550002222", "Direction": "inbound", "CallStatus": "ringing"}
OTHER_TOKEN = "another-accounts-auth-token"


def signature(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    return str(RequestValidator(token).compute_signature(url, params))


FORGERIES = [
    pytest.param("/voice", signature(PUBLIC_URL + "/voice", CALL, OTHER_TOKEN),
                 id="voice-signed-with-another-token"),
    pytest.param("/voice", signature(PUBLIC_URL + "/twilio/status", CALL),
                 id="voice-signed-for-the-status-url"),
    pytest.param("/voice", signature("https://evil.example.test/voice", CALL),
                 id="voice-signed-for-another-host"),
    pytest.param("/voice", signature(PUBLIC_URL + "/voice", {**CALL, "To": "+15559999999"}),
                 id="voice-signed-for-other-params"),
    pytest.param("/voice", signature(PUBLIC_URL.replace("https", "http") + "/voice", CALL),
                 id="voice-signed-for-plain-http"),
    pytest.param("/twilio/status", signature(PUBLIC_URL + "/twilio/status", CALL, OTHER_TOKEN),
                 id="status-signed-with-another-token"),
    pytest.param("/twilio/status", signature(PUBLIC_URL + "/voice", CALL),
                 id="status-signed-for-the-voice-url"),
    pytest.param("/twilio/recording", "A" * 28, id="recording-made-up-signature"),
]


@pytest.mark.parametrize(("path", "forged"), FORGERIES)
async def test_a_webhook_with_a_forged_or_misdirected_signature_is_refused_with_403(
    path: str, forged: str,
) -> None:
    """Another account's token, another URL, host, scheme or params: 403, no call, no leak."""
    async with harness() as h:
        baseline = await warm_baseline(h)
        async with httpx.AsyncClient(base_url=h.server.url, trust_env=False) as client:
            response = await client.post(path, data=CALL, headers={"X-Twilio-Signature": forged})
        assert response.status_code == 403
        await asyncio.sleep(0.1)
        assert h.fake.connections == [], "no upstream session was opened"
        await assert_nothing_leaked(h, baseline)


UPGRADES = [
    pytest.param(signature("wss://voice.example.test/twilio/stream", {}, OTHER_TOKEN),
                 id="signed-with-another-token"),
    pytest.param(signature("wss://voice.example.test/voice", {}), id="signed-for-another-path"),
    pytest.param(signature("wss://evil.example.test/twilio/stream", {}),
                 id="signed-for-another-host"),
    pytest.param(signature(PUBLIC_URL + "/voice", CALL), id="a-webhook-signature-reused"),
]


@pytest.mark.parametrize("forged", UPGRADES)
async def test_a_media_upgrade_with_a_forged_signature_is_refused_before_accept(
    forged: str,
) -> None:
    """The upgrade is answered 403 instead of 101: nothing of a call is created."""
    async with harness() as h:
        baseline = await warm_baseline(h)
        url = h.server.url.replace("http", "ws") + "/twilio/stream"
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, additional_headers={"X-Twilio-Signature": forged},
                               open_timeout=5):
                pass
        assert refused.value.response.status_code == 403
        assert h.fake.connections == []
        await assert_nothing_leaked(h, baseline)


async def test_a_replayed_voice_webhook_for_a_live_call_reuses_it() -> None:
    """The same signed request again (a replay, or Twilio retrying): one call, one upstream."""
    async with harness() as h:
        baseline = await warm_baseline(h)
        signed = {"X-Twilio-Signature": signature(PUBLIC_URL + "/voice", CALL)}
        async with httpx.AsyncClient(base_url=h.server.url, trust_env=False) as client:
            first = await client.post("/voice", data=CALL, headers=signed)
            replayed = await client.post("/voice", data=CALL, headers=signed)
        assert (first.status_code, replayed.status_code) == (200, 200)
        await h.fake.wait_for(lambda: len(h.fake.connections) == 1, timeout=3.0)
        await asyncio.sleep(0.2)
        assert len(h.fake.connections) == 1, "a replay does not open a second upstream session"
        assert len(h.state.calls) == 1
        await h.state.calls.close_all()
        await assert_nothing_leaked(h, baseline)


async def test_a_webhook_replayed_after_its_call_ended_opens_a_session_only_until_the_ttl() -> None:
    """A /voice request replayed after its call ended opens a session only until the token TTL."""
    async with harness(env={"CALLBRIDGE_STREAM_TOKEN_TTL": "1"}) as h:
        baseline = await warm_baseline(h)
        signed = {"X-Twilio-Signature": signature(PUBLIC_URL + "/voice", CALL)}
        async with httpx.AsyncClient(base_url=h.server.url, trust_env=False) as client:
            for _ in range(2):  # the call, then the replay once it is over
                assert (await client.post("/voice", data=CALL, headers=signed)).status_code == 200
                await h.fake.wait_for(lambda: len(h.state.calls) == 0, timeout=4.0)
        assert len(h.fake.connections) == 2
        assert all(c.closed for c in h.fake.connections)
        await assert_nothing_leaked(h, baseline)
